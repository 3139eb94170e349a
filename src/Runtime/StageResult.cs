using Pipeline.Contracts.V1;

namespace Pipeline.Runtime;

/// <summary>What a stage produced from one input shard.</summary>
public sealed record StageResult(IReadOnlyList<ShardRef> Outputs, object? Stats = null);
