using System.Text.Json;
using Pipeline.Contracts.V1;
using Pipeline.Runtime;

namespace Pipeline.Hosting;

/// <summary>
/// The one way a stage turns an input shard into output shards, wherever it runs (a bus consumer, a CLI stage
/// command, the tokenizer's consumers): skip an input the ledger has finished; process it; record the output shards;
/// run the stage's follow-up (the tokenizer publishes its manifest); announce the outputs; record the input as done.
/// A crash between any two of these leaves the input unfinished, so it is done again, with the same shard ids and
/// files (every stage is deterministic), and no announcement is lost: downstream consumers skip what they did, and
/// a consumer of the ledger (a coordinator on another host) that sees the input done finds its outputs recorded and
/// followed up.
/// </summary>
public sealed class ShardStep(Ledger ledger, string stage)
{
    public string Stage => stage;

    /// <summary>Runs the input; null when the ledger had finished it already.</summary>
    /// <param name="announce">Publishes one output (with the stage's stats), or null when nothing listens (CLI runs).</param>
    /// <param name="afterRecord">What the stage does once the outputs are recorded and before they are announced.</param>
    public async Task<StageResult?> RunAsync(ShardRef input, Func<CancellationToken, Task<StageResult>> process,
        Func<ShardRef, object?, Task>? announce, CancellationToken ct, Func<StageResult, Task>? afterRecord = null)
    {
        if (ledger.Artifacts.IsProcessed(stage, input.ShardId)) return null;
        var result = await process(ct);
        // A shard's own stats travel with it (the tokenizer's manifest reads its token counts from them).
        var extra = result.Stats is null ? null : JsonSerializer.Serialize(result.Stats);
        foreach (var output in result.Outputs) ledger.Artifacts.RecordShard(output, extra);
        if (afterRecord is not null) await afterRecord(result);
        if (announce is not null)
            foreach (var output in result.Outputs) await announce(output, result.Stats);
        ledger.Artifacts.CompleteInput(stage, input.ShardId, input.RunId, result.Outputs, result.Stats);
        return result;
    }

    /// <summary>
    /// A source stage's shard (the crawl's: it has no input shard): recorded as its own input, done, then announced.
    /// A crash in between leaves it recorded; the coordinator announces shards the next stage has not taken.
    /// </summary>
    public async Task RecordSourceAsync(ShardRef shard, Func<Task> announce)
    {
        if (!ledger.Artifacts.IsProcessed(stage, shard.ShardId)) ledger.Artifacts.CompleteInput(stage, shard.ShardId, shard.RunId, [shard]);
        await announce();
    }
}
