using System.Runtime.InteropServices;
using System.Text.Json;
using Pipeline.Contracts.V1;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Dedup;

/// <summary>
/// A run's LSH index shared by dedup services on separate hosts, whose folders are their own: every host keeps a local
/// copy of the index and brings it up to date, under the writer lease, from the object store before it decides a shard.
/// Each decided shard appends a change (the shard's kept ids and signatures, a Parquet object with its SHA-256 in the
/// ledger) and bumps the ledger's generation; every <see cref="SnapshotEvery"/> changes the writer also publishes the
/// whole index as a folder, so a new host fetches one snapshot and replays the changes after it, not the whole history.
/// A change replays as "forget the shard, add its documents", so replaying one twice (a crash after applying it but
/// before recording that) leaves the same index.
/// </summary>
public sealed class SharedLshIndex(ShardStore store, Ledger ledger, string runId, int snapshotEvery = SharedLshIndex.DefaultSnapshotEvery)
{
    public const int DefaultSnapshotEvery = 64;

    private string GenerationKey => LedgerKeys.DedupIndexGeneration(runId);
    private string SnapshotKey => LedgerKeys.DedupIndexSnapshot(runId);

    private string Folder => RunArtifacts.IndexFolder(runId);

    public int SnapshotEvery => snapshotEvery;

    private string AppliedPath => store.Resolve($"{Folder}/shared-generation");

    /// <summary>The generation this host's copy has reached (0 for none).</summary>
    private long Applied => File.Exists(AppliedPath) ? long.Parse(File.ReadAllText(AppliedPath)) : 0;

    private static long Generation(Ledger ledger, string key) => ledger.Documents.Get(key) is { } text ? long.Parse(text) : 0;

    /// <summary>
    /// Brings the local index at <paramref name="indexPath"/> up to the shared generation. Returns the index to use:
    /// <paramref name="open"/>, or a new one when a snapshot replaced the files (the old one is then disposed).
    /// </summary>
    public async Task<LshIndex> CatchUpAsync(LshIndex? open, string indexPath, DedupOptions options, CancellationToken ct)
    {
        var generation = Generation(ledger, GenerationKey);
        // A host whose index files were deleted (a rebuild, a wiped disk) starts again from the snapshot.
        var applied = File.Exists(indexPath) ? Applied : 0;
        if (applied > generation)
            throw new InvalidDataException($"the local LSH index '{indexPath}' is at change {applied}, past the ledger's {generation}: it belongs to another ledger; delete it");
        var snapshot = Generation(ledger, SnapshotKey);
        if (snapshot > applied)
        {
            open?.Dispose();
            open = null;
            await InstallSnapshotAsync(snapshot, indexPath, ct);
            applied = snapshot;
        }
        var index = open ?? new LshIndex(indexPath, options.Bands, options.Rows);
        for (var change = applied + 1; change <= generation; change++)
        {
            var record = JsonSerializer.Deserialize<ChangeRecord>(ledger.Documents.Get(LedgerKeys.DedupIndexChange(runId, change))
                ?? throw new InvalidDataException($"the ledger lacks dedup index change {change} of {generation}"))!;
            var rows = await store.ReadParquetAsync<IndexChangeRow>(record.Object, ct);
            index.RemoveShard(record.Shard);
            index.AddAll(rows.Select(r =>
            {
                var signature = MemoryMarshal.Cast<byte, uint>(r.Signature).ToArray();
                return (r.Id, signature, index.BandKeys(signature));
            }).ToList(), record.Shard);
            SetApplied(change);
        }
        return index;
    }

    /// <summary>
    /// Publishes what deciding <paramref name="shard"/> added to the local index, as the next change. Returns true when
    /// a snapshot is due: the caller closes the index and calls <see cref="PublishSnapshotAsync"/>.
    /// </summary>
    public async Task<bool> PublishChangeAsync(string shard, IReadOnlyList<(string Id, uint[] Signature, long[] Keys)> added, CancellationToken ct)
    {
        var change = Generation(ledger, GenerationKey) + 1;
        var rows = added.Select(a => new IndexChangeRow { Id = a.Id, Signature = MemoryMarshal.AsBytes(a.Signature.AsSpan()).ToArray() }).ToList();
        // The object goes up before the ledger names it; a crash in between leaves an object the next change overwrites.
        var reference = await store.WriteParquetAsync($"{Folder}/changes/{change:D10}.parquet", rows,
            new ShardDescriptor($"dedup-index-{change:D10}", "dedup-index", "", [shard], runId), ct);
        ledger.Documents.Set(LedgerKeys.DedupIndexChange(runId, change), JsonSerializer.Serialize(new ChangeRecord(shard, reference)));
        ledger.Documents.Set(GenerationKey, change.ToString());
        SetApplied(change);
        return change % snapshotEvery == 0;
    }

    /// <summary>Publishes the closed local index as the snapshot of the current generation.</summary>
    public async Task PublishSnapshotAsync(string indexPath, CancellationToken ct)
    {
        var generation = Applied;
        var uri = $"{Folder}/snapshots/{generation:D10}";
        await store.CommitFolderAsync(uri, folder =>
        {
            File.Copy(indexPath, Path.Combine(folder, "lsh.db"), overwrite: true);
            File.Copy(Path.ChangeExtension(indexPath, ".bands"), Path.Combine(folder, "lsh.bands"), overwrite: true);
        }, ct);
        var previous = Generation(ledger, SnapshotKey);
        ledger.Documents.Set(SnapshotKey, generation.ToString());
        Directory.Delete(store.Resolve(uri), recursive: true);
        // Only the latest snapshot is ever read; the changes before it are still named by the ledger but no longer needed.
        if (previous > 0) await store.UnpublishFolderAsync($"{Folder}/snapshots/{previous:D10}", ct);
    }

    private async Task InstallSnapshotAsync(long generation, string indexPath, CancellationToken ct)
    {
        var uri = $"{Folder}/snapshots/{generation:D10}";
        var folder = await store.FetchFolderAsync(uri, ct);
        if (!File.Exists(Path.Combine(folder, "lsh.db")))
            throw new InvalidDataException($"the dedup index snapshot '{uri}' named by the ledger is missing");
        foreach (var file in LshIndex.Files(indexPath)) File.Delete(file);
        AtomicWrite.Commit(Path.Combine(folder, "lsh.db"), indexPath);
        AtomicWrite.Commit(Path.Combine(folder, "lsh.bands"), Path.ChangeExtension(indexPath, ".bands"));
        Directory.Delete(folder, recursive: true);
        SetApplied(generation);
    }

    private void SetApplied(long generation)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(AppliedPath)!);
        File.WriteAllText(AppliedPath, generation.ToString());
    }

    private sealed record ChangeRecord(string Shard, ShardRef Object);
}

/// <summary>One kept document of a shared-index change: its id and MinHash signature (little-endian uint32s).</summary>
public sealed class IndexChangeRow
{
    public string Id { get; set; } = "";
    public byte[] Signature { get; set; } = [];
}
