namespace Pipeline.Contracts.Checkpoints;

/// <summary>What a checkpoint folder's checkpoint.json holds besides the weights.</summary>
public sealed record CheckpointInfo(string RunName, long Step, long TokensSeen, string TokenizerHash, double? ValidationLoss, TrainingConfig Config, string? BaseCheckpoint = null, string? Method = null)
{
    /// <summary>The learning-rate factor after skipped non-finite steps (1 = none), restored on resume.</summary>
    public double LearningRateScale { get; init; } = 1.0;
    /// <summary>Whether the checkpoint was saved with its optimizer state (false for imported and aligned checkpoints).</summary>
    public bool HasOptimizerState { get; init; } = true;
    /// <summary>Set when the weights are quantized (`pipeline quantize`): such a checkpoint samples and evaluates, and is not trained.</summary>
    public WeightQuantization? Quantization { get; init; }
}
