using System.Text.Json;
using System.Text.RegularExpressions;

namespace Pipeline.Runtime;

/// <summary>
/// Where a run's model came from: the checkpoint it started from and how (a fine-tune's "sft" or "dpo", a student's
/// "distill" from its teacher, a quantized copy's "quantize", an RL policy's "ppo" with the reward model it was
/// trained against). Recorded in the ledger when its checkpoints are announced, so the dashboard draws base → aligned
/// → reward model → policy, teacher → student and full precision → quantized without relying on run names.
/// </summary>
public sealed partial record RunLineage(string Run, string BaseCheckpoint, string Method, string? RewardModel = null)
{
    /// <summary>The base checkpoint's run and step, read from its path (…checkpoints/&lt;run&gt;/step-N), or null.</summary>
    public (string Run, long Step)? Base => RunAndStep(BaseCheckpoint);

    /// <summary>The reward model's run and step (RL), or null.</summary>
    public (string Run, long Step)? Reward => RewardModel is null ? null : RunAndStep(RewardModel);

    /// <summary>A checkpoint's run and step, read from its URI or path (…checkpoints/&lt;run&gt;/step-N), or null.</summary>
    public static (string Run, long Step)? RunAndStep(string checkpoint) =>
        CheckpointPath().Match(checkpoint.Replace('\\', '/')) is { Success: true } m && long.TryParse(m.Groups[2].Value, out var step)
            ? (m.Groups[1].Value, step) : null;

    [GeneratedRegex(@"(?:^|/)checkpoints/([^/]+)/step-(\d+)/?$")]
    private static partial Regex CheckpointPath();
}

/// <summary>The lineage of every run that has one, in the ledger's documents (<see cref="LedgerKeys.Lineage"/>).</summary>
public static class LineageStore
{
    public static void Record(DocumentStore documents, RunLineage lineage) =>
        documents.Set(LedgerKeys.Lineage(lineage.Run), JsonSerializer.Serialize(lineage));

    public static IReadOnlyList<RunLineage> All(DocumentStore documents) =>
        [.. documents.KeysWithPrefix(LedgerKeys.Lineage("")).Select(key => documents.Get(key)).OfType<string>()
            .Select(json => JsonSerializer.Deserialize<RunLineage>(json)).OfType<RunLineage>()];
}
