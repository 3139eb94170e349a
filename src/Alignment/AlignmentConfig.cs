using System.Text.Json;

namespace Pipeline.Alignment;

/// <summary>Settings of an SFT or DPO job (LoRA when <see cref="LoraRank"/> is above 0, else full fine-tuning).</summary>
public sealed record AlignmentConfig
{
    public string Method { get; init; } = "sft";
    public int Steps { get; init; } = 100;
    public int BatchSize { get; init; } = 8;
    public double LearningRate { get; init; } = 1e-4;
    public double WeightDecay { get; init; }
    public double Beta { get; init; } = 0.1;
    public int LoraRank { get; init; }
    public double LoraAlpha { get; init; } = 16;
    public double LoraDropout { get; init; }
    public List<string> LoraTargets { get; init; } = ["attn", "mlp"];
    /// <summary>SFT: pack short examples into full rows (attention kept within each example) instead of padding each.</summary>
    public bool Packing { get; init; } = true;
    /// <summary>Examples longer than the context: "truncate" (keep the start, counted) or "drop" (counted).</summary>
    public string TooLong { get; init; } = "truncate";
    public long Seed { get; init; } = 1;
    /// <summary>Log loss (and for DPO reward margin and accuracy) every this many steps.</summary>
    public int LogEvery { get; init; } = 10;

    private static readonly JsonSerializerOptions JsonOptions = new() { PropertyNameCaseInsensitive = true };

    /// <summary>A config from JSON (a config file or a message), property names in any case; unset ones keep their defaults.</summary>
    public static AlignmentConfig FromJson(string json) => JsonSerializer.Deserialize<AlignmentConfig>(json, JsonOptions) ?? new AlignmentConfig();
}

/// <summary>
/// What a job did: per-step loss (and for DPO reward margin and accuracy), examples truncated or dropped, and the
/// examples used with the rows they were packed into (equal without packing).
/// </summary>
public sealed record AlignmentReport(List<(int Step, double Loss, double Margin, double Accuracy)> Steps, int Truncated, int Dropped, int Examples, int Rows);
