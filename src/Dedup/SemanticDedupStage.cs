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
/// Semantic dedup as a barrier after dedup (`pipeline run` with Pipeline:SemanticDedup:Enabled): every kept document's
/// embedding (<see cref="TextEmbedding"/>), read one row group at a time, then k-means and SemDeDup's decisions once
/// over the whole run (<see cref="SemanticDeduplicator"/>). The removed ids go to a list the tokenizer skips, as
/// decontamination's do; the summary goes to the ledger for the report.
/// </summary>
public sealed class SemanticDedupStage(ShardStore store, Ledger ledger, ILogger<SemanticDedupStage> logger) : IRunStage
{
    public static string Name => "semantic-dedup";

    public async Task<object?> RunAsync(string runId, IReadOnlyList<ShardRef> inputs, string settingsJson, CancellationToken ct)
    {
        var settings = JsonSerializer.Deserialize<SemanticDedupSettings>(settingsJson) ?? throw new ArgumentException($"{Name}: no settings");
        return await RunAsync(store, ledger, logger, runId, inputs.Select(s => (s, store)).ToList(), settings, ct);
    }

    /// <summary>Semantic dedup of a run's shards (each read from its own store), its removed ids recorded for the tokenizer and its summary in the ledger.</summary>
    public static async Task<SemanticDedupSummary> RunAsync(ShardStore store, Ledger ledger, ILogger logger, string runId, IReadOnlyList<(ShardRef Ref, ShardStore Store)> inputs,
        SemanticDedupSettings settings, CancellationToken ct)
    {
        var summary = await DeduplicateAsync(inputs, ledger.Superseded.Ids(runId), settings, ct);
        var removed = new SortedSet<string>(summary.RemovedIds, StringComparer.Ordinal);
        var uri = $"semantic-dedup/{runId}/removed-documents.json";
        var (sha256, _) = await store.CommitFileAsync(uri, s => JsonSerializer.SerializeAsync(s, removed, cancellationToken: ct), ct);
        ledger.Documents.Set(LedgerKeys.SemanticDuplicates(runId), JsonSerializer.Serialize(new ExcludedDocuments(uri, sha256, removed.Count)));
        ledger.Documents.Set(LedgerKeys.SemanticDedup(runId), JsonSerializer.Serialize(summary.Summary));
        logger.LogInformation("{Stage}: {Documents} documents in {Clusters} clusters; {Duplicates} semantic duplicates and {Prototypes} prototypes removed before tokenization ({Uri})",
            Name, summary.Summary.Documents, summary.Summary.Clusters.Count, summary.Summary.Duplicates, summary.Summary.Prototypes, uri);
        return summary.Summary;
    }

    /// <summary>Semantic dedup of the documents of <paramref name="shards"/> (except <paramref name="skip"/>): what it removed, and the summary.</summary>
    public static async Task<(IReadOnlyList<string> RemovedIds, SemanticDedupSummary Summary)> DeduplicateAsync(IReadOnlyList<(ShardRef Ref, ShardStore Store)> shards,
        IReadOnlySet<string> skip, SemanticDedupSettings settings, CancellationToken ct)
    {
        var embedded = new List<(string Id, float[] Vector)>();
        var starts = new Dictionary<string, string>();
        foreach (var (shard, store) in shards)
            await foreach (var group in store.ReadRowGroupsAsync<CleanDocument>(shard, ct))
                foreach (var document in group.Where(d => !skip.Contains(d.Id)))
                {
                    embedded.Add((document.Id, TextEmbedding.Embed(document.Text, settings.Dimensions, settings.Seed)));
                    starts[document.Id] = document.Text.Length > 160 ? document.Text[..160] + "…" : document.Text;
                }
        var clusters = SemanticDeduplicator.Run(embedded, settings);
        var removals = clusters.SelectMany(c => c.Removed).ToList();
        var summary = new SemanticDedupSummary(settings, embedded.Count, removals.Count(r => r.KeptId is not null), removals.Count(r => r.KeptId is null),
            clusters.Select(c => new SemanticClusterSummary(c.Cluster, c.Documents, c.Removed.Count(r => r.KeptId is not null), c.Removed.Count(r => r.KeptId is null)))
                .OrderByDescending(c => c.Duplicates + c.Prototypes).ThenBy(c => c.Cluster).ToList(),
            // The pairs nearest the threshold say most about where it cuts: the least similar removed ones, then the most.
            removals.Where(r => r.KeptId is not null).OrderBy(r => r.Similarity).Take(5)
                .Concat(removals.Where(r => r.KeptId is not null).OrderByDescending(r => r.Similarity).Take(5)).DistinctBy(r => r.Id)
                .Select(r => new SemanticPairExample(r.Id, r.KeptId!, Math.Round(r.Similarity, 4), starts[r.Id], starts[r.KeptId!])).ToList());
        return (removals.Select(r => r.Id).ToList(), summary);
    }
}
