using Pipeline.Release;

namespace Pipeline.Trainer;

/// <summary>The release configuration section (Pipeline:Release): which checkpoints leave the lab, and as what.</summary>
public sealed class ReleaseOptions
{
    public const string Section = "Pipeline:Release";

    /// <summary>Automatic releases: each checkpoint of a rule's run is released as each of the rule's targets.</summary>
    public List<ReleaseRule> Rules { get; set; } = [];

    /// <summary>Refuses a rule without a run or targets, or with a target <see cref="ReleaseTarget.Parse"/> does not read, naming it.</summary>
    public void Validate()
    {
        foreach (var rule in Rules)
        {
            if (rule.Run.Length == 0 || rule.Targets.Count == 0)
                throw new ArgumentException($"{Section}:Rules: every rule needs Run and Targets (got Run='{rule.Run}', {rule.Targets.Count} targets)");
            ReleaseTarget.CheckAll(rule.Targets, $"{Section}:Rules for run '{rule.Run}'");
        }
    }
}

/// <summary>"Release every checkpoint of run <see cref="Run"/> (from step <see cref="MinStep"/> on) as each of <see cref="Targets"/>."</summary>
public sealed class ReleaseRule
{
    public string Run { get; set; } = "";
    /// <summary>Only checkpoints at or after this step (for example the final one).</summary>
    public long MinStep { get; set; }
    /// <summary>"int8", "int4", "int4/64", "gguf:q8_0", ... (<see cref="ReleaseTarget"/>).</summary>
    public List<string> Targets { get; set; } = [];
}
