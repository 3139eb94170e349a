namespace Pipeline.Evaluator;

/// <summary>The evaluator configuration section (Pipeline:Evaluator).</summary>
public sealed class EvaluatorOptions
{
    public const string Section = "Pipeline:Evaluator";

    /// <summary>Task files (YAML/JSON) run on every checkpoint besides the validation perplexity.</summary>
    public List<string> Tasks { get; set; } = [];

    /// <summary>Cron schedules (Quartz syntax, with seconds) that publish sweeps, e.g. nightly over the latest checkpoints.</summary>
    public List<EvaluationSchedule> Schedules { get; set; } = [];
}

public sealed class EvaluationSchedule
{
    public string Name { get; set; } = "sweep";
    /// <summary>Quartz cron expression, e.g. "0 0 3 * * ?" for 03:00 every day.</summary>
    public string Cron { get; set; } = "";
    public List<string> Runs { get; set; } = [];
    public List<string> Tasks { get; set; } = [];
    public bool LatestOnly { get; set; } = true;
}
