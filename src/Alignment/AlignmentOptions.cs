namespace Pipeline.Alignment;

/// <summary>The alignment configuration section (Pipeline:Alignment).</summary>
public sealed class AlignmentOptions
{
    public const string Section = "Pipeline:Alignment";

    /// <summary>Automatic jobs: each base checkpoint of a rule's run starts that rule's SFT or DPO job.</summary>
    public List<AlignmentRule> Rules { get; set; } = [];
}

/// <summary>"After every base checkpoint of run <see cref="Run"/> (from step <see cref="MinStep"/> on), run <see cref="Method"/> on <see cref="Data"/>."</summary>
public sealed class AlignmentRule
{
    public string Run { get; set; } = "";
    public string Method { get; set; } = "sft";
    /// <summary>Data set URI relative to the data root (JSONL or Parquet).</summary>
    public string Data { get; set; } = "";
    /// <summary>Only checkpoints at or after this step (for example the final one).</summary>
    public long MinStep { get; set; }
    public AlignmentConfig Config { get; set; } = new();

    /// <summary>The aligned run's name for a base checkpoint: one run per base step, so jobs never share a folder.</summary>
    public string OutputRun(long baseStep) => $"{Run}-{Method}-from-{baseStep}";
}
