using Pipeline.Model;

namespace Pipeline.Trainer;

/// <summary>Everything a training run needs besides its data (the JSON of `pipeline train --config`).</summary>
public sealed record TrainingConfig
{
    public string RunName { get; init; } = "run";
    public GptConfig Model { get; init; } = new();
    public int BatchSize { get; init; } = 12;
    /// <summary>Tokens per optimizer step; gradient accumulation makes up the difference to BatchSize x Context.</summary>
    public int TokensPerStep { get; init; } = 0;
    public int MaxSteps { get; init; } = 200;
    public double LearningRate { get; init; } = 1e-3;
    public double MinLearningRate { get; init; } = 1e-4;
    public int WarmupSteps { get; init; } = 20;
    public double WeightDecay { get; init; } = 0.1;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    public double GradClip { get; init; } = 1.0;
    public int EvalEvery { get; init; } = 50;
    public int EvalBatches { get; init; } = 4;
    public int CheckpointEvery { get; init; } = 100;
    public int KeepLast { get; init; } = 3;
    public int Threads { get; init; } = 0;
    public long Seed { get; init; } = 1337;
    public int LogEvery { get; init; } = 10;
    /// <summary>Peak FLOP/s of the device, for MFU (default: a rough 2-core AVX2 CPU figure).</summary>
    public double PeakFlops { get; init; } = 100e9;
    /// <summary>"cpu" or "cuda"; empty picks cuda when available.</summary>
    public string Device { get; init; } = "";

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
