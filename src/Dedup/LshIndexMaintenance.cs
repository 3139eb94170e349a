using Pipeline.Contracts.Rows;
using Pipeline.Storage;

namespace Pipeline.Dedup;

/// <summary>What the persisted LSH index holds and what the dedup shards removed (for `pipeline dedup --stats`).</summary>
/// <param name="ClusterSizes">Per kept document that others duplicated: how many documents it stands for, itself included.</param>
public sealed record LshIndexStats(long Indexed, long Bytes, long Removed, IReadOnlyList<int> ClusterSizes);

/// <summary>Reading and rebuilding a run's persisted LSH index from its dedup shards.</summary>
public static class LshIndexMaintenance
{
    private static IEnumerable<string> Files(ShardStore store, string runId, string prefix)
    {
        var folder = store.Resolve($"shards/dedup/{SafeName.Check(runId, "run")}");
        return Directory.Exists(folder) ? Directory.GetFiles(folder, prefix + "*.parquet").Order(StringComparer.Ordinal) : [];
    }

    /// <summary>
    /// Deletes the run's index and re-adds every kept document of its dedup shards, in shard order. The documents removed
    /// before are not in those shards, so they are not indexed again: a later near duplicate of only those is kept.
    /// </summary>
    public static async Task<long> RebuildAsync(DedupOptions options, ShardStore store, string runId, CancellationToken ct)
    {
        var path = store.Resolve(ShardDeduplicator.IndexUri(runId));
        foreach (var file in LshIndex.Files(path)) File.Delete(file);
        var hasher = new MinHasher(options);
        using var index = new LshIndex(path, options.Bands, options.Rows);
        long count = 0;
        foreach (var file in Files(store, runId, "dedup-"))
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

    public static async Task<LshIndexStats> ReadStatsAsync(DedupOptions options, ShardStore store, string runId, CancellationToken ct)
    {
        var path = store.Resolve(ShardDeduplicator.IndexUri(runId));
        long indexed = 0, bytes = 0;
        if (File.Exists(path))
        {
            using var index = new LshIndex(path, options.Bands, options.Rows);
            indexed = index.Count;
            bytes = index.Size.Disk;
        }
        var clusters = new Dictionary<string, int>();
        long removed = 0;
        foreach (var file in Files(store, runId, "duplicates-"))
        {
            foreach (var pair in await store.ReadParquetUncheckedAsync<DuplicatePair>(store.RelativeUri(file), ct))
            {
                clusters[pair.KeptId] = clusters.GetValueOrDefault(pair.KeptId) + 1;
                removed++;
            }
        }
        return new LshIndexStats(indexed, bytes, removed, clusters.Values.Select(v => v + 1).ToList());
    }
}
