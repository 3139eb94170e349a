using Pipeline.Cleaner;
using Pipeline.Storage;
using Spectre.Console;

using Pipeline.Dedup;
using Pipeline.Contracts.Rows;

namespace Pipeline.Cli.Commands;

/// <summary>`pipeline dedup --stats` and `--rebuild-index`: reading and rebuilding the persisted LSH index.</summary>
public static class DedupIndexTools
{
    private static IEnumerable<string> Files(ShardStore store, string prefix) =>
        Directory.Exists(store.Resolve("shards/dedup"))
            ? Directory.GetFiles(store.Resolve("shards/dedup"), prefix + "*.parquet", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            : [];

    /// <summary>Deletes the index and re-adds every kept document of the dedup shards, in shard order.</summary>
    public static async Task<long> RebuildAsync(DedupOptions options, ShardStore store, CancellationToken ct)
    {
        var path = store.Resolve("index/lsh.db");
        foreach (var file in LshIndex.Files(path)) File.Delete(file);
        var hasher = new MinHasher(options);
        using var index = new LshIndex(path, options.Bands, options.Rows);
        long count = 0;
        foreach (var file in Files(store, "dedup-"))
        {
            var docs = await store.ReadParquetUncheckedAsync<CleanDocument>(store.RelativeUri(file), ct);
            var shardId = Path.GetFileNameWithoutExtension(file)["dedup-".Length..];
            var signatures = new uint[docs.Count][];
            Parallel.For(0, docs.Count, i => signatures[i] = hasher.Fingerprint(docs[i].Text, docs[i].Language));
            index.AddAll(docs.Select((d, i) => (d.Id, signatures[i], index.BandKeys(signatures[i]))), shardId);
            count += docs.Count;
        }
        return count;
    }

    public static async Task PrintStatsAsync(DedupOptions options, ShardStore store, CancellationToken ct)
    {
        var path = store.Resolve("index/lsh.db");
        long indexed = 0, bytes = 0;
        if (File.Exists(path))
        {
            using var index = new LshIndex(path, options.Bands, options.Rows);
            indexed = index.Count;
            bytes = index.Size.Disk;
        }
        var clusters = new Dictionary<string, int>();
        long removed = 0;
        foreach (var file in Files(store, "duplicates-"))
        {
            foreach (var pair in await store.ReadParquetUncheckedAsync<DuplicatePair>(store.RelativeUri(file), ct))
            {
                clusters[pair.KeptId] = clusters.GetValueOrDefault(pair.KeptId) + 1;
                removed++;
            }
        }
        AnsiConsole.MarkupLine($"index: {indexed:N0} kept documents, {bytes / 1e6:F1} MB on disk ({(indexed == 0 ? 0 : bytes / indexed):N0} bytes per document)");
        AnsiConsole.MarkupLine($"documents seen: {indexed + removed:N0}, removed as near-duplicates: {removed:N0}");
        var histogram = new Table().AddColumns("cluster size", "clusters");
        histogram.AddRow("1 (no duplicate)", (indexed - clusters.Count).ToString("N0"));
        foreach (var group in clusters.Values.GroupBy(v => v + 1 >= 10 ? 10 : v + 1).OrderBy(g => g.Key))
            histogram.AddRow(group.Key == 10 ? "10+" : group.Key.ToString(), group.Count().ToString("N0"));
        AnsiConsole.Write(histogram);

        var (bestBands, bestRows) = LshParameters.Optimal(options.Threshold, options.Bands * options.Rows);
        var curve = new Table().AddColumns("Jaccard", $"P(candidate) {options.Bands}x{options.Rows}", $"P(candidate) {bestBands}x{bestRows} (optimal for {options.Threshold})");
        foreach (var s in new[] { 0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95 })
            curve.AddRow(s.ToString("F2"), LshParameters.Probability(s, options.Bands, options.Rows).ToString("F3"), LshParameters.Probability(s, bestBands, bestRows).ToString("F3"));
        AnsiConsole.Write(curve);
        var (fp, fn) = LshParameters.Errors(options.Threshold, options.Bands, options.Rows);
        AnsiConsole.MarkupLine($"configured {options.Bands}x{options.Rows}: false-positive area {fp:F4}, false-negative area {fn:F4} at threshold {options.Threshold} (candidates are then verified on their signatures: Pipeline:Dedup:Verify={options.Verify})");
    }
}
