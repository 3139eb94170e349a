using System.Text.Json;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts;
using Pipeline.Contracts.Rows;
using Pipeline.Contracts.V1;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Dedup;

/// <summary>What semantic dedup did in a run (the report's and dashboard's section): clusters, removals per cluster, examples.</summary>
/// <param name="Documents">Documents considered (kept by dedup, not superseded by a copy with a smaller id).</param>
/// <param name="Clusters">Each cluster's size and how many it removed as duplicates and as prototypes, largest removals first.</param>
/// <param name="Examples">Removed pairs: the removed document, the kept one it duplicates, their similarity and the start of each text.</param>
public sealed record SemanticDedupSummary(SemanticDedupSettings Settings, int Documents, int Duplicates, int Prototypes,
    IReadOnlyList<SemanticClusterSummary> Clusters, IReadOnlyList<SemanticPairExample> Examples);

public sealed record SemanticClusterSummary(int Cluster, int Documents, int Duplicates, int Prototypes);

public sealed record SemanticPairExample(string RemovedId, string KeptId, double Similarity, string Removed, string Kept);

/// <summary>
/// The first half of semantic dedup, per shard: each kept document's embedding (<see cref="TextEmbedding"/>) and the
/// start of its text, as an embedding shard. It runs on every dedup service that takes the run's requests, in
/// parallel, one shard at a time each; the decisions (<see cref="SemanticDedupStage"/>) then read only the vectors.
/// </summary>
public sealed class ShardEmbedder(ShardStore store, EmbeddingSource source) : IShardStage
{
    public static string Name => "embed";

    public async Task<StageResult> ProcessAsync(ShardRef input, CancellationToken ct)
    {
        var (embed, maker) = await source.GetAsync(ct);
        var rows = new List<DocumentEmbedding>();
        await foreach (var group in store.ReadRowGroupsAsync<CleanDocument>(input, ct))
            rows.AddRange(group.Select(d => new DocumentEmbedding { Id = d.Id, Start = SemanticDedupStage.Start(d.Text), Vector = embed(d.Text) }));
        // The maker is the shard's config: the decisions refuse to cluster vectors of two makers together.
        var id = StableId.Of(input.ShardId, Name, maker);
        var output = await store.WriteParquetAsync($"shards/{Name}/{input.RunId}/embed-{id}.parquet", rows,
            new ShardDescriptor(id, Name, maker, [input.ShardId], input.RunId), ct);
        return new StageResult([output], new { Documents = rows.Count });
    }
}

/// <summary>
/// Semantic dedup's decisions, a barrier after the embeddings (`pipeline run` with Pipeline:SemanticDedup:Enabled):
/// k-means and SemDeDup's removals once over the whole run (<see cref="SemanticDeduplicator"/>), from the embedding
/// shards. The removed ids go to a list the tokenizer skips, as decontamination's do; the summary goes to the ledger
/// for the report.
/// </summary>
public sealed class SemanticDedupStage(ShardStore store, Ledger ledger, ILogger<SemanticDedupStage> logger) : IRunStage
{
    public static string Name => "semantic-dedup";

    public async Task<object?> RunAsync(string runId, IReadOnlyList<ShardRef> inputs, string settingsJson, CancellationToken ct)
    {
        var settings = JsonSerializer.Deserialize<SemanticDedupSettings>(settingsJson) ?? throw new ArgumentException($"{Name}: no settings");
        if (inputs.Select(s => s.ConfigHash).Distinct().ToList() is { Count: > 1 } makers)
            throw new InvalidDataException($"{Name}: run {runId}'s embedding shards were made by {string.Join(" and ", makers)}; " +
                "give every dedup service the same Pipeline:SemanticDedup:Checkpoint (or none) and run again");
        // Documents superseded by a copy with a smaller id are not trained on, so they are not considered either.
        var superseded = ledger.Superseded.Ids(runId);
        var embedded = new List<(string Id, float[] Vector)>();
        var starts = new Dictionary<string, string>();
        foreach (var shard in inputs)
            await foreach (var group in store.ReadRowGroupsAsync<DocumentEmbedding>(shard, ct))
                foreach (var row in group.Where(r => !superseded.Contains(r.Id)))
                {
                    embedded.Add((row.Id, row.Vector));
                    starts[row.Id] = row.Start;
                }
        return await RecordAsync(store, ledger, logger, runId, embedded, starts, settings, ct);
    }

    /// <summary>Semantic dedup of documents read from clean or dedup shards (`pipeline semdedup`): embedded here, then decided and recorded for the run.</summary>
    public static async Task<SemanticDedupSummary> RunAsync(ShardStore store, Ledger ledger, ILogger logger, string runId, IReadOnlyList<(ShardRef Ref, ShardStore Store)> inputs,
        SemanticDedupSettings settings, Func<string, float[]> embed, CancellationToken ct)
    {
        var superseded = ledger.Superseded.Ids(runId);
        var embedded = new List<(string Id, float[] Vector)>();
        var starts = new Dictionary<string, string>();
        foreach (var (shard, source) in inputs)
            await foreach (var group in source.ReadRowGroupsAsync<CleanDocument>(shard, ct))
                foreach (var document in group.Where(d => !superseded.Contains(d.Id)))
                {
                    embedded.Add((document.Id, embed(document.Text)));
                    starts[document.Id] = Start(document.Text);
                }
        return await RecordAsync(store, ledger, logger, runId, embedded, starts, settings, ct);
    }

    public static string Start(string text) => text.Length > 160 ? text[..160] + "…" : text;

    /// <summary>Decides, then records the removed ids for the tokenizer (a checksummed list) and the summary for the report.</summary>
    private static async Task<SemanticDedupSummary> RecordAsync(ShardStore store, Ledger ledger, ILogger logger, string runId, List<(string Id, float[] Vector)> embedded,
        Dictionary<string, string> starts, SemanticDedupSettings settings, CancellationToken ct)
    {
        var clusters = SemanticDeduplicator.Run(embedded, settings);
        var removals = clusters.SelectMany(c => c.Removed).ToList();
        var duplicates = removals.Where(r => r.KeptId is not null).ToList();
        var summary = new SemanticDedupSummary(settings, embedded.Count, duplicates.Count, removals.Count - duplicates.Count,
            clusters.Select(c => new SemanticClusterSummary(c.Cluster, c.Documents, c.Removed.Count(r => r.KeptId is not null), c.Removed.Count(r => r.KeptId is null)))
                .OrderByDescending(c => c.Duplicates + c.Prototypes).ThenBy(c => c.Cluster).ToList(),
            // The pairs nearest the threshold say most about where it cuts: the least similar removed ones, then the most.
            duplicates.OrderBy(r => r.Similarity).Take(5).Concat(duplicates.OrderByDescending(r => r.Similarity).Take(5)).DistinctBy(r => r.Id)
                .Select(r => new SemanticPairExample(r.Id, r.KeptId!, Math.Round(r.Similarity, 4), starts[r.Id], starts[r.KeptId!])).ToList());
        var list = await ExcludedDocuments.WriteAsync(store, ledger.Documents, LedgerKeys.SemanticDuplicates(runId), $"semantic-dedup/{runId}/removed-documents.json",
            removals.Select(r => r.Id).ToList(), ct);
        ledger.Documents.Set(LedgerKeys.SemanticDedup(runId), JsonSerializer.Serialize(summary));
        logger.LogInformation("{Stage}: {Documents} documents in {Clusters} clusters; {Duplicates} semantic duplicates and {Prototypes} prototypes removed before tokenization ({Uri})",
            Name, summary.Documents, summary.Clusters.Count, summary.Duplicates, summary.Prototypes, list.Uri);
        return summary;
    }
}
