using Pipeline.Contracts.V1;

namespace Pipeline.Runtime;

/// <summary>
/// A barrier stage: it runs once per run, over every shard its input stage wrote, on whichever service hosts it
/// (Hosting's RunStageConsumer runs it: skip if done, run, record, announce). What it returns is recorded in the
/// ledger as its stats; a stage is added by implementing this and naming it in the run's graph.
/// </summary>
public interface IRunStage
{
    /// <summary>The stage's name in the ledger, the graph and <see cref="RunStageRequested.Stage"/>.</summary>
    static abstract string Name { get; }

    Task<object?> RunAsync(string runId, IReadOnlyList<ShardRef> inputs, string settingsJson, CancellationToken ct);
}

public static class RunStages
{
    /// <summary>A barrier's one input in the ledger's processed table: the whole run.</summary>
    public static string InputId(string runId) => $"run:{runId}";
}
