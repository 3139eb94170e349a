using static TorchSharp.torch;

namespace Pipeline.Model;

/// <summary>
/// Several short sequences packed into one row (B, T): <see cref="Segments"/> numbers the sequence each position
/// belongs to, <see cref="Positions"/> is the position within that sequence (the rotary position). Attention stays
/// inside a segment, so packing changes throughput, never the result.
/// </summary>
public sealed record SequencePacking(Tensor Segments, Tensor Positions);
