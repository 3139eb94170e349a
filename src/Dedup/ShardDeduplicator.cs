using Pipeline.Contracts.V1;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;

namespace Pipeline.Dedup;

/// <summary>
/// Fuzzy dedup of one clean shard against everything its run kept before it: signatures in parallel, then decisions in
/// input order against the run's persisted LSH index, so the result is deterministic. Every run has an index of its
/// own (<see cref="IndexUri"/>), so runs side by side on one deployment (a rerun, the arms of an ablation) are decided
/// independently; a run that goes on ingesting keeps deduplicating against all it kept.
/// </summary>
/// <param name="ledger">
/// When several processes share the index (dedup services on one queue), a lease per run's index in this ledger is
/// held while a shard is decided: each shard is then decided against everything the others kept, and an instance
/// reopens the index when another wrote to it. When the store has an object store (dedup services on separate hosts,
/// folders of their own), the index is also shared through it (<see cref="SharedLshIndex"/>): the local copy catches
/// up before each shard and publishes what the shard added after it.
/// </param>
public sealed class ShardDeduplicator(DedupOptions options, ShardStore store, Ledger? ledger = null,
    int snapshotEvery = SharedLshIndex.DefaultSnapshotEvery) : IShardStage, IDisposable
{
    public const string Stage = Contracts.StageNames.Dedup;

    static string IShardStage.Name => Stage;

    Task<StageResult> IShardStage.ProcessAsync(ShardRef input, CancellationToken ct) => ProcessAsync(input, ct);
    // Indexes kept open across shards (opening loads the band-key bitmap, linear in the index size); a few runs at once.
    private const int OpenIndexes = 4;
    // Ten minutes outlasts any shard, and is how long a crashed holder keeps the others waiting.
    private static readonly TimeSpan LeaseTime = TimeSpan.FromMinutes(10);
    // The index has one writer: shards are decided one at a time, in order, against everything kept before.
    private static readonly SemaphoreSlim IndexGate = new(1, 1);
    private readonly MinHasher _hasher = new(options);
    private readonly List<(string RunId, LshIndex Index)> _open = []; // least recently used first

    /// <summary>Where a run's index lives in a data root (the band log sits beside it).</summary>
    public static string IndexUri(string runId) => RunArtifacts.IndexFolder(runId) + "/lsh.db";

    public string IndexPath(string runId) => store.Resolve(IndexUri(runId));

    /// <summary>
    /// Deduplicates the shard one row group at a time: texts are held for one row group, signatures (a few hundred
    /// bytes a document) for the shard, so memory does not grow with the shard's text.
    /// </summary>
    /// <param name="source">Where the input shard lives, when not in this stage's store (CLI runs over any folder).</param>
    public async Task<StageResult> ProcessAsync(ShardRef input, CancellationToken ct, ShardStore? source = null)
    {
        var configHash = StableId.ConfigHash(options);
        var shardId = StableId.Of(input.ShardId, Stage, configHash);
        var runId = input.RunId;
        var indexPath = IndexPath(runId);
        var shared = ledger is not null && store.HasObjectStore ? new SharedLshIndex(store, ledger, runId, snapshotEvery) : null;
        await IndexGate.WaitAsync(ct);
        await using var lease = ledger is null ? null : await new LedgerLease(ledger, LedgerKeys.DedupIndexLease(runId), LeaseTime).AcquireAsync(ct);
        try
        {
            LshIndex? open = _open.Find(o => o.RunId == runId).Index; // null when not open (the default entry)
            if (shared is not null)
                open = await shared.CatchUpAsync(open, indexPath, options, ct);
            else if (open is { ChangedElsewhere: true })
            {
                open.Dispose();
                open = null;
            }
            var index = Remember(runId, open ?? new LshIndex(indexPath, options.Bands, options.Rows));
            index.RemoveShard(shardId);
            var added = new List<(string Id, uint[] Signature, long[] Keys)>();
            var pending = new Dictionary<long, List<int>>(); // band key -> indexes in `added` (this shard)
            var duplicates = new List<DuplicatePair>();
            var superseded = new Dictionary<string, string>(StringComparer.Ordinal); // kept before -> the smaller duplicate found since
            long seen = 0, written = 0;
            await using var writer = store.CreateParquetWriter<CleanDocument>($"shards/dedup/{runId}/dedup-{shardId}.parquet",
                new ShardDescriptor(shardId, Stage, configHash, [input.ShardId], runId));
            await foreach (var documents in (source ?? store).ReadRowGroupsAsync<CleanDocument>(input, ct))
            {
                var signatures = new uint[documents.Count][];
                Parallel.For(0, documents.Count, new ParallelOptions { CancellationToken = ct },
                    i => signatures[i] = _hasher.Fingerprint(documents[i].Text, documents[i].Language));
                // Of near duplicates the smaller document id is kept, whatever the order of arrival: a document with a
                // near duplicate of smaller id is removed, and the kept documents it finds with larger ids are
                // superseded. Every document is indexed, removed ones too, so that every pair is found once, by
                // whichever of the two arrives second.
                var kept = new List<CleanDocument>();
                for (var i = 0; i < documents.Count; i++)
                {
                    var keys = index.BandKeys(signatures[i]);
                    var id = documents[i].Id;
                    var matches = FindMatches(index, keys, signatures[i], pending, added);
                    (string Id, double Jaccard)? smaller = null;
                    foreach (var match in matches)
                    {
                        var order = string.CompareOrdinal(match.Id, id);
                        if (order > 0) superseded.TryAdd(match.Id, id);
                        else if (order < 0 && (smaller is null || string.CompareOrdinal(match.Id, smaller.Value.Id) < 0)) smaller = match;
                    }
                    foreach (var key in keys)
                    {
                        if (!pending.TryGetValue(key, out var list)) pending[key] = list = [];
                        list.Add(added.Count);
                    }
                    added.Add((id, signatures[i], keys));
                    if (smaller is { } s)
                        duplicates.Add(new DuplicatePair { RemovedId = id, KeptId = s.Id, EstimatedJaccard = Math.Round(s.Jaccard, 4), RemovedUrl = documents[i].Url });
                    else
                        kept.Add(documents[i]);
                }
                // Kept documents of this row group that a later one superseded are not written at all.
                kept.RemoveAll(d => superseded.ContainsKey(d.Id));
                seen += documents.Count;
                written += kept.Count;
                await writer.AppendAsync(kept, ct);
            }
            var output = await writer.CompleteAsync(ct);
            if (duplicates.Count > 0)
                await store.WriteParquetAsync($"shards/dedup/{runId}/duplicates-{shardId}.parquet", duplicates,
                    new ShardDescriptor(shardId + "-duplicates", "dedup-duplicates", configHash, [input.ShardId], runId), ct);
            // Superseded documents already written (earlier row groups, other shards) stay where they are; tokenization,
            // which starts once every shard is decided, skips them.
            ledger?.Superseded.Add(runId, "near_dedup", superseded.Select(kv => (kv.Key, kv.Value)).ToList());
            index.AddAll(added, shardId);
            if (shared is not null && await shared.PublishChangeAsync(shardId, added, ct))
            {
                // A snapshot copies the index's files, so it is closed first (which also folds its write-ahead log in).
                Forget(runId);
                await shared.PublishSnapshotAsync(indexPath, ct);
            }
            return new StageResult([output], new DedupStats((int)seen, (int)written, (int)(seen - written)));
        }
        catch
        {
            // An index left mid-change is reopened (its log cut back to what committed) rather than trusted.
            Forget(runId);
            throw;
        }
        finally
        {
            IndexGate.Release();
        }
    }

    private LshIndex Remember(string runId, LshIndex index)
    {
        _open.RemoveAll(o => o.RunId == runId); // one it replaces was disposed by whoever replaced it
        _open.Add((runId, index));
        while (_open.Count > OpenIndexes) Forget(_open[0].RunId);
        return index;
    }

    private void Forget(string runId)
    {
        var at = _open.FindIndex(o => o.RunId == runId);
        if (at < 0) return;
        _open[at].Index.Dispose();
        _open.RemoveAt(at);
    }

    /// <summary>Every indexed document (of earlier shards, or earlier in this one) that is a near duplicate of the signature.</summary>
    private List<(string Id, double Jaccard)> FindMatches(LshIndex index, long[] keys, uint[] signature,
        Dictionary<long, List<int>> pending, List<(string Id, uint[] Signature, long[] Keys)> added)
    {
        var matches = new List<(string Id, double Jaccard)>();
        var seen = new HashSet<int>();
        foreach (var key in keys)
        {
            if (!pending.TryGetValue(key, out var list)) continue;
            foreach (var j in list)
            {
                if (!seen.Add(j)) continue;
                var jaccard = _hasher.Similarity(signature, added[j].Signature);
                if (!options.Verify || jaccard >= options.Threshold) matches.Add((added[j].Id, jaccard));
            }
        }
        foreach (var doc in index.Candidates(keys))
        {
            var (id, other) = index.Get(doc);
            var jaccard = _hasher.Similarity(signature, other);
            if (options.Verify ? jaccard >= options.Threshold : SharesBand(index, keys, other)) matches.Add((id, jaccard));
        }
        return matches;
    }

    // The in-memory band table keeps 32 bits of each key, so without verification a candidate's band match is
    // confirmed on its stored signature (a collision would otherwise remove a document about once in 10^8 lookups).
    private static bool SharesBand(LshIndex index, long[] keys, uint[] other) => index.BandKeys(other).Intersect(keys).Any();

    public void Dispose()
    {
        lock (IndexGate)
        {
            foreach (var (_, index) in _open) index.Dispose();
            _open.Clear();
        }
    }
}

public sealed record DedupStats(int Input, int Kept, int Removed);
