using Parquet;
using Parquet.Serialization;
using Pipeline.Contracts.V1;

namespace Pipeline.Storage;

/// <summary>
/// Writes a Parquet shard one row group at a time, so a stage holds one row group of its output in memory, not the
/// whole shard. The file is written under a temporary name and appears under its URI only in
/// <see cref="CompleteAsync"/>, complete, synced and hashed; disposed without completing, it leaves nothing behind.
/// The shard's kind (row type) goes in the key-value metadata, where every reader checks it.
/// </summary>
public sealed class ParquetShardWriter<T> : IAsyncDisposable where T : class, new()
{
    private readonly ShardStore _store;
    private readonly string _uri;
    private readonly string _path;
    private readonly string _temp;
    private readonly ShardDescriptor _descriptor;
    private readonly Dictionary<string, string> _metadata = new() { [ShardStore.KindKey] = ShardStore.KindOf<T>() };
    private FileStream? _file;
    private int _groups;

    internal ParquetShardWriter(ShardStore store, string uri, ShardDescriptor descriptor)
    {
        _store = store;
        _uri = uri;
        _descriptor = descriptor;
        _path = store.Resolve(uri);
        _temp = AtomicWrite.Begin(_path);
        // Read and write: appending a row group reads the footer written by the previous one.
        _file = new FileStream(_temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, useAsync: true);
    }

    public long Rows { get; private set; }

    /// <summary>Appends the rows as one row group (no rows, no group).</summary>
    public Task AppendAsync(IReadOnlyCollection<T> rows, CancellationToken ct = default) =>
        rows.Count == 0 ? Task.CompletedTask : WriteGroupAsync(rows, ct);

    private async Task WriteGroupAsync(IReadOnlyCollection<T> rows, CancellationToken ct)
    {
        var file = _file ?? throw new InvalidOperationException($"shard '{_uri}' is already complete");
        await ParquetSerializer.SerializeAsync(rows, file, new ParquetOptions { Append = _groups > 0 }, _metadata, ct);
        _groups++;
        Rows += rows.Count;
    }

    /// <summary>
    /// Appends rows in row groups of at most <paramref name="maxGroupSize"/> (as measured by <paramref name="sizeOf"/>,
    /// say characters of text), so that a reader's memory is bounded by that size whatever the shard's.
    /// </summary>
    public async Task AppendAsync(IEnumerable<T> rows, Func<T, long> sizeOf, long maxGroupSize, CancellationToken ct = default)
    {
        var group = new List<T>();
        long size = 0;
        foreach (var row in rows)
        {
            var rowSize = sizeOf(row);
            if (group.Count > 0 && size + rowSize > maxGroupSize)
            {
                await AppendAsync(group, ct);
                group = [];
                size = 0;
            }
            group.Add(row);
            size += rowSize;
        }
        await AppendAsync(group, ct);
    }

    /// <summary>Syncs, hashes and renames the file into place; returns the shard's claim check.</summary>
    public async Task<ShardRef> CompleteAsync(CancellationToken ct = default)
    {
        if (_groups == 0) await WriteGroupAsync(Array.Empty<T>(), ct); // an empty shard is still a valid Parquet file
        var file = _file!;
        await file.FlushAsync(ct);
        file.Flush(flushToDisk: true);
        await file.DisposeAsync();
        _file = null;
        var (sha, bytes) = await ShardStore.HashFileAsync(_temp, ct);
        AtomicWrite.Commit(_temp, _path);
        await _store.PublishShardAsync(_uri, _path, ct);
        return new ShardRef(_descriptor.ShardId, _uri, sha, Rows, bytes, _descriptor.Stage, _descriptor.ConfigHash,
            _descriptor.ParentShardIds, _descriptor.RunId);
    }

    public async ValueTask DisposeAsync()
    {
        if (_file is not null) await _file.DisposeAsync();
        _file = null;
        if (File.Exists(_temp)) File.Delete(_temp);
    }
}
