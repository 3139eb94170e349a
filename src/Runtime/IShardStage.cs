using Pipeline.Contracts.V1;

namespace Pipeline.Runtime;

/// <summary>
/// A per-shard stage: one input shard in, its output shards out. Hosting's ShardStageConsumer runs every such stage
/// the same way (ShardStep: skip if done, process, record, announce); a stage is added by implementing this, hosting
/// it with one line in a service and naming it in the run's graph.
/// </summary>
public interface IShardStage
{
    /// <summary>The stage's name in the ledger, the graph and the shards it writes.</summary>
    static abstract string Name { get; }

    /// <summary>
    /// Whether the stage can take the run's shards yet (tokenization waits for the run's vocabulary): a shard that
    /// comes too early waits in the ledger, unfinished, until whatever the stage waits for takes it up.
    /// </summary>
    bool IsReadyFor(string runId) => true;

    Task<StageResult> ProcessAsync(ShardRef input, CancellationToken ct);

    /// <summary>What the stage does once its outputs are recorded and before they are announced (the tokenizer adds them to the run's manifest).</summary>
    Task AfterRecordAsync(ShardRef input, StageResult result, CancellationToken ct) => Task.CompletedTask;
}
