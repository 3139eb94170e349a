using System.ComponentModel.DataAnnotations;

namespace Pipeline.Contracts.Checkpoints;

/// <summary>Shape of a decoder-only GPT.</summary>
public sealed record GptConfig
{
    [Range(2, int.MaxValue)]
    public int VocabSize { get; init; } = 4096;
    [Range(1, int.MaxValue)]
    public int Layers { get; init; } = 4;
    [Range(1, int.MaxValue)]
    public int Heads { get; init; } = 4;
    [Range(1, int.MaxValue)]
    public int Width { get; init; } = 128;
    [Range(2, int.MaxValue)]
    public int Context { get; init; } = 256;
    /// <summary>"rmsnorm" (default) or "layernorm".</summary>
    public string Norm { get; init; } = "rmsnorm";
    /// <summary>"swiglu" (default) or "gelu".</summary>
    public string Mlp { get; init; } = "swiglu";
    [Range(double.Epsilon, double.MaxValue)]
    public double RopeTheta { get; init; } = 10_000;
    /// <summary>
    /// A reward model: a scalar head (score: width → 1, no bias) on the final hidden state, read at a sequence's last
    /// token, as Hugging Face's LlamaForSequenceClassification with one label. Written only when set.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public bool ScoreHead { get; init; }

    public int HeadDim => Width / Heads;

    /// <summary>SwiGLU hidden width: 8/3 of the model width (same parameters as a 4x GELU MLP), rounded up to 32.</summary>
    public int MlpHidden => Mlp == "swiglu" ? (8 * Width / 3 + 31) / 32 * 32 : 4 * Width;

    public void Validate()
    {
        if (VocabSize < 2 || Layers < 1 || Heads < 1 || Width < 1 || Context < 2)
            throw new ArgumentException($"model: vocab size ({VocabSize}), layers ({Layers}), heads ({Heads}), width ({Width}) and context ({Context}) must be positive (context at least 2)");
        if (Width % Heads != 0) throw new ArgumentException($"model width {Width} is not divisible by {Heads} heads");
        if (HeadDim % 2 != 0) throw new ArgumentException($"head dimension {HeadDim} must be even for rotary embeddings");
        if (Norm is not ("rmsnorm" or "layernorm")) throw new ArgumentException($"model norm '{Norm}' is not rmsnorm or layernorm");
        if (Mlp is not ("swiglu" or "gelu")) throw new ArgumentException($"model MLP '{Mlp}' is not swiglu or gelu");
    }

    /// <summary>All parameters: the blocks plus the tied embedding, counted once.</summary>
    public long Parameters()
    {
        long perLayer = 4L * Width * Width + (Mlp == "swiglu" ? 3L : 2L) * Width * MlpHidden + 2L * Width;
        return Layers * perLayer + (long)VocabSize * Width + Width;
    }

    /// <summary>
    /// Training FLOPs per token, forward and backward: 6N for the weights plus 12·L·T·W for attention's score and
    /// value products (PaLM, Chowdhery et al. 2022, appendix B; nanoGPT's estimate_mfu).
    /// </summary>
    public double FlopsPerToken() => 6.0 * Parameters() + 12.0 * Layers * Context * Width;
}
