using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Parquet;
using Parquet.Serialization;
using Pipeline.Contracts.V1;
using Pipeline.Contracts.Rows;

namespace Pipeline.Storage;

/// <summary>
/// A folder of shards (local disk or a shared mount). Writes go to a temporary name and are renamed when complete;
/// reads verify the SHA-256 that the producer recorded; no URI may leave the root. With an object store
/// (<see cref="IObjectStore"/>, S3), every file written is also put there under its URI, and a shard that is not in
/// the folder is downloaded into it before it is read: the folder is then this host's scratch space and a cache of
/// shards, bounded by <see cref="CacheLimitBytes"/> (least recently used shards are deleted first).
/// </summary>
public sealed partial class ShardStore
{
    private readonly IObjectStore? _remote;
    private readonly LinkedList<(string Path, long Bytes)> _cached = new(); // shards only, least recently used first
    private readonly Lock _cacheGate = new();
    private long _cachedBytes;

    public ShardStore(string root, IObjectStore? remote = null, long cacheLimitBytes = long.MaxValue)
    {
        Directory.CreateDirectory(root);
        // Resolve the root itself once, so a root reached through a symlink still confines correctly.
        Root = Path.TrimEndingDirectorySeparator(RealPath.OfExistingPrefix(Path.GetFullPath(root)));
        _remote = remote;
        CacheLimitBytes = cacheLimitBytes;
    }

    /// <summary>How many bytes of shards the folder keeps when an object store holds them all.</summary>
    public long CacheLimitBytes { get; }

    public string Root { get; }

    /// <summary>Maps a root-relative URI to a full path, refusing anything that escapes the root.</summary>
    public string Resolve(string uri)
    {
        if (string.IsNullOrWhiteSpace(uri))
            throw new ShardRejectedException(uri ?? "", "empty URI");
        if (Path.IsPathRooted(uri) || uri.Contains('\\') || uri.Contains(':'))
            throw new ShardRejectedException(uri, "absolute paths are not allowed; URIs are relative to the storage root");
        var segments = uri.Split('/');
        if (segments.Any(s => s is ".." or "." || s.Length == 0))
            throw new ShardRejectedException(uri, "path segments '..', '.' and empty ones are not allowed");

        var current = Path.Combine([Root, .. segments]);
        // Containment is checked on the real path, resolved by the operating system (links within links, '..' in a
        // link's target), not lexically: with a -> b/../c and b -> /elsewhere, only realpath(3) sees where a leads.
        string real;
        try
        {
            real = RealPath.OfExistingPrefix(current);
        }
        catch (IOException e)
        {
            throw new ShardRejectedException(uri, e.Message);
        }
        if (!IsUnderRoot(real))
            throw new ShardRejectedException(uri, real == current ? "the path leaves the storage root" : $"a symbolic link leads outside the storage root (to '{real}')");
        return current;
    }

    public string RelativeUri(string fullPath) =>
        Path.GetRelativePath(Root, fullPath).Replace(Path.DirectorySeparatorChar, '/');

    public bool Exists(string uri) => File.Exists(Resolve(uri));

    /// <summary>
    /// The way a file artifact (a report, a task copy, a list of excluded documents) enters the data root: written
    /// under a temporary name of its own inside the confined root, renamed into place only when complete, hashed, and
    /// published to the object store when there is one.
    /// </summary>
    public async Task<(string Sha256, long Bytes)> CommitFileAsync(string uri, Func<Stream, Task> write, CancellationToken ct = default)
    {
        var path = Resolve(uri);
        await AtomicWrite.FileAsync(path, write, ct);
        var (sha, bytes) = await HashFileAsync(path, ct);
        if (_remote is not null) await _remote.UploadAsync(uri, path, ct);
        return (sha, bytes);
    }

    /// <summary>Parquet key-value metadata key naming a shard's row type (RawPage, CleanDocument, TokenRow, ...).</summary>
    public const string KindKey = "pipeline.kind";

    /// <summary>The kind of shard a row type makes: its type name, stored in the file and checked by every reader.</summary>
    public static string KindOf<T>() => typeof(T).Name;

    /// <summary>Writes records as a one-row-group Parquet shard (its kind in the metadata) and returns its claim check.</summary>
    public async Task<ShardRef> WriteParquetAsync<T>(string uri, IReadOnlyCollection<T> rows, ShardDescriptor descriptor, CancellationToken ct = default)
        where T : class, new()
    {
        await using var writer = CreateParquetWriter<T>(uri, descriptor);
        await writer.AppendAsync(rows, ct);
        return await writer.CompleteAsync(ct);
    }

    /// <summary>A writer that adds a shard one row group at a time (see <see cref="ParquetShardWriter{T}"/>).</summary>
    public ParquetShardWriter<T> CreateParquetWriter<T>(string uri, ShardDescriptor descriptor) where T : class, new() =>
        new(this, uri, descriptor);

    /// <summary>Reads and deserializes a whole Parquet shard; see <see cref="ReadRowGroupsAsync{T}"/>.</summary>
    public async Task<IList<T>> ReadParquetAsync<T>(ShardRef shard, CancellationToken ct = default) where T : class, new()
    {
        var rows = new List<T>();
        await foreach (var group in ReadRowGroupsAsync<T>(shard, ct)) rows.AddRange(group);
        return rows;
    }

    /// <summary>
    /// Reads a shard one row group at a time, so memory is bounded by the row group, not the file. The file is
    /// first checked to be the one its producer announced (SHA-256, streamed through the same open handle), then
    /// to be a shard of the expected kind; a file that fails either is rejected, naming the shard and the problem.
    /// </summary>
    public async IAsyncEnumerable<IList<T>> ReadRowGroupsAsync<T>(ShardRef shard, [EnumeratorCancellation] CancellationToken ct = default) where T : class, new()
    {
        var path = await LocalCopyAsync(shard.Uri, ct);
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        var sha = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct));
        if (!string.Equals(sha, shard.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            // A copy that does not match is dropped, so a later attempt fetches the object again.
            if (_remote is not null) File.Delete(path);
            throw new ShardRejectedException(shard.Uri, $"checksum mismatch: expected {shard.Sha256}, {(_remote is null ? "file" : _remote.Describe(shard.Uri))} has {sha}");
        }
        await foreach (var group in ReadGroupsAsync<T>(shard.Uri, stream, ct)) yield return group;
    }

    /// <summary>Reads a Parquet file without a claim check (CLI inspection, rebuilds); its kind is still checked.</summary>
    public async Task<IList<T>> ReadParquetUncheckedAsync<T>(string uri, CancellationToken ct = default) where T : class, new()
    {
        var path = await LocalCopyAsync(uri, ct);
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
        var rows = new List<T>();
        await foreach (var group in ReadGroupsAsync<T>(uri, stream, ct)) rows.AddRange(group);
        return rows;
    }

    /// <summary>
    /// The local path of a shard, downloaded from the object store first when the folder does not have it (to a
    /// temporary name, renamed when complete). The caller checks its SHA-256 before using it.
    /// </summary>
    private async Task<string> LocalCopyAsync(string uri, CancellationToken ct)
    {
        var path = Resolve(uri);
        if (File.Exists(path))
        {
            Touch(path);
            return path;
        }
        if (_remote is null) throw new ShardRejectedException(uri, "the file does not exist");
        if (!await DownloadAsync(uri, path, ct)) throw new ShardRejectedException(uri, $"{_remote.Describe(uri)} does not exist");
        Cached(path);
        return path;
    }

    /// <summary>A shard now in the folder that the object store also holds: it may be evicted later.</summary>
    internal async Task PublishShardAsync(string uri, string path, CancellationToken ct)
    {
        if (_remote is null) return;
        await _remote.UploadAsync(uri, path, ct);
        Cached(path);
    }

    private void Cached(string path)
    {
        var evict = new List<string>();
        lock (_cacheGate)
        {
            var bytes = new FileInfo(path).Length;
            _cached.AddLast((path, bytes));
            _cachedBytes += bytes;
            while (_cachedBytes > CacheLimitBytes && _cached.First is { } oldest && oldest.Value.Path != path)
            {
                _cached.RemoveFirst();
                _cachedBytes -= oldest.Value.Bytes;
                evict.Add(oldest.Value.Path);
            }
        }
        // An evicted shard that a reader still has open stays readable through its handle (POSIX unlink).
        foreach (var file in evict) File.Delete(file);
    }

    private void Touch(string path)
    {
        if (_remote is null) return;
        lock (_cacheGate)
        {
            for (var node = _cached.First; node is not null; node = node.Next)
            {
                if (node.Value.Path != path) continue;
                _cached.Remove(node);
                _cached.AddLast(node);
                return;
            }
        }
    }

    private static async IAsyncEnumerable<IList<T>> ReadGroupsAsync<T>(string uri, Stream stream, [EnumeratorCancellation] CancellationToken ct) where T : class, new()
    {
        int groups;
        try
        {
            stream.Position = 0;
            await using var reader = await ParquetReader.CreateAsync(stream, null, leaveStreamOpen: true, ct);
            CheckKind<T>(uri, reader.CustomMetadata, reader.Schema.DataFields.Select(f => f.Name));
            groups = reader.RowGroupCount;
        }
        catch (Exception e) when (e is not (OperationCanceledException or ShardRejectedException))
        {
            throw new ShardRejectedException(uri, $"not a readable Parquet shard ({e.Message})", e);
        }
        for (var i = 0; i < groups; i++)
        {
            IList<T> rows;
            try
            {
                stream.Position = 0;
                rows = (await ParquetSerializer.DeserializeAsync<T>(stream, null, i, ct)).Data;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new ShardRejectedException(uri, $"row group {i} is not readable as {KindOf<T>()} ({e.Message})", e);
            }
            yield return rows;
        }
    }

    /// <summary>
    /// A shard of another kind is refused (Parquet.Net would fill the missing columns with defaults and a stage would
    /// silently process empty rows). Shards this project wrote name their kind; for files from elsewhere every column
    /// the row type reads must be present.
    /// </summary>
    private static void CheckKind<T>(string uri, IReadOnlyDictionary<string, string> metadata, IEnumerable<string> columns)
    {
        var expected = KindOf<T>();
        if (metadata.TryGetValue(KindKey, out var kind))
        {
            if (kind != expected) throw new ShardRejectedException(uri, $"expected a {expected} shard, but this is a {kind} shard");
            return;
        }
        var present = columns.ToHashSet(StringComparer.Ordinal);
        var missing = typeof(T).GetProperties().Where(p => p.CanWrite && !present.Contains(p.Name)).Select(p => p.Name).ToList();
        if (missing.Count > 0)
            throw new ShardRejectedException(uri, $"expected a {expected} shard, but the file lacks its columns {string.Join(", ", missing)} (it has {string.Join(", ", present)})");
    }

    public static async Task<(string Sha256, long Bytes)> HashFileAsync(string path, CancellationToken ct = default)
    {
        await using var stream = File.OpenRead(path);
        var hash = await SHA256.HashDataAsync(stream, ct);
        return (Convert.ToHexStringLower(hash), stream.Length);
    }

    private bool IsUnderRoot(string path)
    {
        var full = Path.GetFullPath(path);
        return full.StartsWith(Root + Path.DirectorySeparatorChar, StringComparison.Ordinal);
    }
}
