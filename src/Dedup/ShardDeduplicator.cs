using Pipeline.Contracts.V1;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;

namespace Pipeline.Dedup;

/// <summary>
/// Fuzzy dedup of one clean shard against everything kept before it (this run and earlier ones): signatures in
/// parallel, then decisions in input order against the persisted LSH index, so the result is deterministic.
/// </summary>
/// <param name="writerLease">
/// Held while a shard is decided, when several processes share the index (dedup services on one queue): each shard
/// is then decided against everything the others kept, and an instance reopens the index when another wrote to it.
/// </param>
/// <param name="shared">
/// The index as shared through the object store, when the dedup services on the queue have folders of their own
/// (separate hosts): the local copy catches up before each shard and publishes what the shard added after it.
/// </param>
public sealed class ShardDeduplicator(DedupOptions options, ShardStore store, LedgerLease? writerLease = null, SharedLshIndex? shared = null) : IDisposable
{
    // Kept open across shards: opening loads the band-key bitmap, which is linear in the index size.
    private LshIndex? _index;

    public const string Stage = Contracts.StageNames.Dedup;
    // The index has one writer: shards are decided one at a time, in order, against everything kept before.
    private static readonly SemaphoreSlim IndexGate = new(1, 1);
    private readonly MinHasher _hasher = new(options);

    public string IndexPath => store.Resolve("index/lsh.db");

    /// <summary>
    /// Deduplicates the shard one row group at a time: texts are held for one row group, signatures (a few hundred
    /// bytes a document) for the shard, so memory does not grow with the shard's text.
    /// </summary>
    /// <param name="source">Where the input shard lives, when not in this stage's store (CLI runs over any folder).</param>
    public async Task<StageResult> ProcessAsync(ShardRef input, CancellationToken ct, ShardStore? source = null)
    {
        var configHash = StableId.ConfigHash(options);
        var shardId = StableId.Of(input.ShardId, Stage, configHash);
        await IndexGate.WaitAsync(ct);
        await using var lease = writerLease is null ? null : await writerLease.AcquireAsync(ct);
        try
        {
            if (shared is not null)
                _index = await shared.CatchUpAsync(_index, IndexPath, options, ct);
            else if (_index is { ChangedElsewhere: true })
            {
                _index.Dispose();
                _index = null;
            }
            var index = _index ??= new LshIndex(IndexPath, options.Bands, options.Rows);
            index.RemoveShard(shardId);
            var added = new List<(string Id, uint[] Signature, long[] Keys)>();
            var pending = new Dictionary<long, List<int>>(); // band key -> indexes in `added` (this shard)
            var duplicates = new List<DuplicatePair>();
            long seen = 0;
            await using var writer = store.CreateParquetWriter<CleanDocument>($"shards/dedup/{input.RunId}/dedup-{shardId}.parquet",
                new ShardDescriptor(shardId, Stage, configHash, [input.ShardId], input.RunId));
            await foreach (var documents in (source ?? store).ReadRowGroupsAsync<CleanDocument>(input, ct))
            {
                var signatures = new uint[documents.Count][];
                Parallel.For(0, documents.Count, new ParallelOptions { CancellationToken = ct },
                    i => signatures[i] = _hasher.Fingerprint(documents[i].Text, documents[i].Language));
                var kept = new List<CleanDocument>();
                for (var i = 0; i < documents.Count; i++)
                {
                    var keys = index.BandKeys(signatures[i]);
                    var match = FindMatch(index, keys, signatures[i], pending, added);
                    if (match is { } m)
                    {
                        duplicates.Add(new DuplicatePair { RemovedId = documents[i].Id, KeptId = m.Id, EstimatedJaccard = Math.Round(m.Jaccard, 4), RemovedUrl = documents[i].Url });
                        continue;
                    }
                    foreach (var key in keys)
                    {
                        if (!pending.TryGetValue(key, out var list)) pending[key] = list = [];
                        list.Add(added.Count);
                    }
                    added.Add((documents[i].Id, signatures[i], keys));
                    kept.Add(documents[i]);
                }
                seen += documents.Count;
                await writer.AppendAsync(kept, ct);
            }
            var output = await writer.CompleteAsync(ct);
            if (duplicates.Count > 0)
                await store.WriteParquetAsync($"shards/dedup/{input.RunId}/duplicates-{shardId}.parquet", duplicates,
                    new ShardDescriptor(shardId + "-duplicates", "dedup-duplicates", configHash, [input.ShardId], input.RunId), ct);
            index.AddAll(added, shardId);
            if (shared is not null && await shared.PublishChangeAsync(shardId, added, input.RunId, ct))
            {
                // A snapshot copies the index's files, so it is closed first (which also folds its write-ahead log in).
                index.Dispose();
                _index = null;
                await shared.PublishSnapshotAsync(IndexPath, ct);
            }
            return new StageResult([output], new DedupStats((int)seen, added.Count, duplicates.Count));
        }
        finally
        {
            IndexGate.Release();
        }
    }

    private (string Id, double Jaccard)? FindMatch(LshIndex index, long[] keys, uint[] signature,
        Dictionary<long, List<int>> pending, List<(string Id, uint[] Signature, long[] Keys)> added)
    {
        foreach (var key in keys)
        {
            if (!pending.TryGetValue(key, out var list)) continue;
            foreach (var j in list)
            {
                var jaccard = _hasher.Similarity(signature, added[j].Signature);
                if (!options.Verify || jaccard >= options.Threshold) return (added[j].Id, jaccard);
            }
        }
        foreach (var doc in index.Candidates(keys))
        {
            var (id, other) = index.Get(doc);
            var jaccard = _hasher.Similarity(signature, other);
            if (options.Verify ? jaccard >= options.Threshold : SharesBand(index, keys, other)) return (id, jaccard);
        }
        return null;
    }

    // The in-memory band table keeps 32 bits of each key, so without verification a candidate's band match is
    // confirmed on its stored signature (a collision would otherwise remove a document about once in 10^8 lookups).
    private static bool SharesBand(LshIndex index, long[] keys, uint[] other) => index.BandKeys(other).Intersect(keys).Any();

    public void Dispose()
    {
        lock (IndexGate)
        {
            _index?.Dispose();
            _index = null;
        }
    }
}

public sealed record DedupStats(int Input, int Kept, int Removed);
