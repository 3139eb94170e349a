using System.ComponentModel.DataAnnotations;

namespace Pipeline.Contracts.Checkpoints;

/// <summary>Everything a training run needs besides its data (the JSON of `pipeline train --config`).</summary>
public sealed record TrainingConfig
{
    public string RunName { get; init; } = "run";
    public GptConfig Model { get; init; } = new();
    [Range(1, int.MaxValue)]
    public int BatchSize { get; init; } = 12;
    /// <summary>Tokens per optimizer step; gradient accumulation makes up the difference to BatchSize x Context.</summary>
    [Range(0, int.MaxValue)]
    public int TokensPerStep { get; init; } = 0;
    [Range(1, int.MaxValue)]
    public int MaxSteps { get; init; } = 200;
    [Range(double.Epsilon, double.MaxValue)]
    public double LearningRate { get; init; } = 1e-3;
    [Range(0.0, double.MaxValue)]
    public double MinLearningRate { get; init; } = 1e-4;
    [Range(0, int.MaxValue)]
    public int WarmupSteps { get; init; } = 20;
    public double WeightDecay { get; init; } = 0.1;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    [Range(0.0, double.MaxValue)]
    public double GradClip { get; init; } = 1.0;
    [Range(1, int.MaxValue)]
    public int EvalEvery { get; init; } = 50;
    /// <summary>Validation batches (of 8 windows) per evaluation.</summary>
    [Range(1, int.MaxValue)]
    public int EvalBatches { get; init; } = 4;
    [Range(1, int.MaxValue)]
    public int CheckpointEvery { get; init; } = 100;
    [Range(1, int.MaxValue)]
    public int KeepLast { get; init; } = 3;
    [Range(0, int.MaxValue)]
    public int Threads { get; init; } = 0;
    public long Seed { get; init; } = 1337;
    [Range(1, int.MaxValue)]
    public int LogEvery { get; init; } = 10;
    /// <summary>Peak FLOP/s of the device, for MFU; 0 = unknown (MFU is then not reported, unless <see cref="Gpu"/> names one).</summary>
    [Range(0.0, double.MaxValue)]
    public double PeakFlops { get; init; }
    /// <summary>The GPU model, for its peak dense bf16 FLOP/s from <see cref="GpuPeaks"/> (a100, h100, l4, ...); empty = unknown.</summary>
    public string Gpu { get; init; } = "";
    /// <summary>Start from a checkpoint's weights with a fresh optimizer state when its optimizer.bin is missing.</summary>
    public bool ResetOptimizer { get; init; }
    /// <summary>Train as a student of a teacher checkpoint (`pipeline distill`); null trains on the data alone.</summary>
    public DistillationConfig? Distillation { get; init; }

    /// <summary>
    /// Peak dense bf16 tensor FLOP/s (no sparsity) from the vendors' data sheets, by GPU model: the denominator of MFU.
    /// A CPU has no such figure here, so on a CPU the trainer reports tokens/s only.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, double> GpuPeaks = new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase)
    {
        ["a100"] = 312e12, ["h100-sxm"] = 989e12, ["h100-pcie"] = 756e12, ["h100"] = 989e12, ["h200"] = 989e12,
        ["l4"] = 121e12, ["l40s"] = 362e12, ["a10"] = 125e12, ["rtx-4090"] = 165e12, ["rtx-3090"] = 71e12, ["v100"] = 125e12,
    };

    /// <summary>The peak used for MFU, or 0 when unknown.</summary>
    public double ResolvedPeakFlops => PeakFlops > 0 ? PeakFlops
        : Gpu.Length == 0 ? 0
        : GpuPeaks.TryGetValue(Gpu, out var peak) ? peak
        : throw new ArgumentException($"training config: Gpu '{Gpu}' is not one of {string.Join(", ", GpuPeaks.Keys)}; set PeakFlops instead");
    /// <summary>"cpu" or "cuda"; empty picks cuda when available.</summary>
    public string Device { get; init; } = "";
    /// <summary>
    /// "auto" (bf16 on CUDA, fp32 on CPU), "fp32", or "bf16": forward and backward in bf16 with fp32 master weights
    /// and optimizer state (the trainer's Bf16Compute). bf16 also runs on a CPU, slowly unless it has AVX-512 BF16/AMX.
    /// </summary>
    public Precision Precision { get; init; } = Precision.Auto;
    /// <summary>Recompute block activations in the backward pass (less memory, about one more forward pass of time).</summary>
    public bool ActivationCheckpointing { get; init; }
    /// <summary>Budget in tokens instead of steps (0 = use MaxSteps).</summary>
    [Range(0L, long.MaxValue)]
    public long MaxTokens { get; init; }
    /// <summary>
    /// Budget in training FLOPs (0 = off): the trainer picks the Chinchilla-optimal model (about 20 tokens per
    /// parameter, C = 6ND) and token count, overriding Model's layers/heads/width and the step budget.
    /// </summary>
    [Range(0.0, double.MaxValue)]
    public double ComputeBudgetFlops { get; init; }
    /// <summary>Also keep the checkpoint with the best validation loss, whatever KeepLast drops.</summary>
    public bool KeepBest { get; init; } = true;
    /// <summary>On a non-finite loss: "skip" (skip the update and halve the learning rate; five in a row stop the run) or "stop" (checkpoint and stop with an error).</summary>
    public NonFiniteAction OnNonFinite { get; init; } = NonFiniteAction.Skip;
    /// <summary>Re-read the token manifest at every evaluation and train on shards that arrived since (corpus still being ingested).</summary>
    public bool FollowCorpus { get; init; }

    public int AccumulationSteps => TokensPerStep <= 0 ? 1 : Math.Max(1, TokensPerStep / (BatchSize * Model.Context));

    /// <summary>Linear warm-up, then cosine decay to the floor.</summary>
    public double LearningRateAt(long step)
    {
        if (step < WarmupSteps) return LearningRate * (step + 1) / WarmupSteps;
        if (step >= MaxSteps) return MinLearningRate;
        var progress = (double)(step - WarmupSteps) / Math.Max(1, MaxSteps - WarmupSteps);
        return MinLearningRate + 0.5 * (1 + Math.Cos(Math.PI * progress)) * (LearningRate - MinLearningRate);
    }
}

/// <summary>What a training run computes in (TrainingConfig.Precision; "auto", "fp32" or "bf16" in JSON).</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(NamedEnumConverter<Precision>))]
public enum Precision
{
    /// <summary>bf16 on CUDA, fp32 on a CPU.</summary>
    Auto,
    Fp32,
    Bf16,
}

/// <summary>What a training run does on a non-finite loss (TrainingConfig.OnNonFinite; "skip" or "stop" in JSON).</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(NamedEnumConverter<NonFiniteAction>))]
public enum NonFiniteAction
{
    /// <summary>Skip the update and halve the learning rate; five in a row stop the run.</summary>
    Skip,
    /// <summary>Checkpoint and stop with an error.</summary>
    Stop,
}
