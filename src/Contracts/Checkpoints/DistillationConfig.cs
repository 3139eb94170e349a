using System.ComponentModel.DataAnnotations;

namespace Pipeline.Contracts.Checkpoints;

/// <summary>
/// Knowledge distillation (Hinton et al. 2015): the student's loss is <see cref="Alpha"/> x cross-entropy on the data
/// plus (1 - Alpha) x T² x the KL divergence between the teacher's and the student's distributions softened by the
/// temperature T. <see cref="Divergence"/> "forward" is KL(teacher ‖ student), Hinton's, which spreads the student over
/// everything the teacher allows; "reverse" is KL(student ‖ teacher), MiniLLM's token-level form, which keeps it on
/// the teacher's modes. The teacher's logits are computed on the fly, on the same batch.
/// </summary>
public sealed record DistillationConfig
{
    /// <summary>The teacher's checkpoint folder: absolute, or relative to the data root (checkpoints/&lt;run&gt;/step-N).</summary>
    [Required, MinLength(1)]
    public string Teacher { get; init; } = "";

    /// <summary>
    /// 1 by default, as language-model distillation uses it (MiniLLM, GKD): the student's validation loss is measured
    /// at temperature 1, and on this project's models T = 2 made the student worse than training without a teacher
    /// (docs/benchmarks.md).
    /// </summary>
    [Range(0.01, 100.0)]
    public double Temperature { get; init; } = 1.0;

    /// <summary>The weight of the data's cross-entropy; 0 is the teacher alone, 1 is no teacher (default 0.2, measured).</summary>
    [Range(0.0, 1.0)]
    public double Alpha { get; init; } = 0.2;

    /// <summary>"forward" (KL(teacher ‖ student)) or "reverse" (KL(student ‖ teacher)).</summary>
    [RegularExpression("forward|reverse", ErrorMessage = "Divergence is 'forward' or 'reverse'")]
    public string Divergence { get; init; } = "forward";

    /// <summary>
    /// Keep only the teacher's k most likely tokens per position (renormalized), as when the teacher's logits are
    /// stored rather than recomputed; 0 keeps the whole distribution. Forward divergence only.
    /// </summary>
    [Range(0, int.MaxValue)]
    public int TopK { get; init; }
}
