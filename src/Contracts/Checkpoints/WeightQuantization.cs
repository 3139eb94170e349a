namespace Pipeline.Contracts.Checkpoints;

/// <summary>
/// How a checkpoint's weights are quantized (weight-only, symmetric): <see cref="Bits"/> 8 or 4; one scale per
/// <see cref="GroupSize"/> consecutive weights of an output channel (0: one per channel); the token embedding (also the
/// tied output layer) quantized too when <see cref="Embeddings"/>. Norms stay in full precision.
/// </summary>
public sealed record WeightQuantization(int Bits, int GroupSize, bool Embeddings)
{
    public string Name => $"int{Bits}";

    public void Validate(long width, long mlpHidden)
    {
        if (Bits is not (8 or 4)) throw new ArgumentException($"quantization: {Bits} bits (int8 or int4)");
        if (GroupSize < 0) throw new ArgumentException($"quantization: group size {GroupSize} (0 for one scale per output channel, or 32, 64, ...)");
        foreach (var inputs in new[] { width, mlpHidden })
            if (GroupSize > 0 && inputs % GroupSize != 0)
                throw new ArgumentException($"quantization: group size {GroupSize} does not divide a layer's {inputs} inputs");
    }
}
