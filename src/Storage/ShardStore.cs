using System.Security.Cryptography;
using Parquet;
using Parquet.Serialization;
using Pipeline.Contracts.V1;

namespace Pipeline.Storage;

/// <summary>
/// A folder of shards (local disk or a shared mount). Writes go to a temporary name and are renamed when complete;
/// reads verify the SHA-256 that the producer recorded; no URI may leave the root.
/// </summary>
public sealed class ShardStore
{
    private const string TempSuffix = ".tmp";

    public ShardStore(string root)
    {
        Directory.CreateDirectory(root);
        // Resolve the root itself once, so a root reached through a symlink still confines correctly.
        var full = Path.GetFullPath(root);
        Root = new DirectoryInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full;
        Root = Path.TrimEndingDirectorySeparator(Root);
    }

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

        var current = Root;
        foreach (var segment in segments)
        {
            current = Path.Combine(current, segment);
            var info = new FileInfo(current);
            if (info.LinkTarget is null) continue;
            var target = info.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? current;
            if (!IsUnderRoot(target))
                throw new ShardRejectedException(uri, $"a symbolic link leads outside the storage root (to '{target}')");
        }
        if (!IsUnderRoot(current))
            throw new ShardRejectedException(uri, "the path leaves the storage root");
        return current;
    }

    public string RelativeUri(string fullPath) =>
        Path.GetRelativePath(Root, fullPath).Replace(Path.DirectorySeparatorChar, '/');

    public bool Exists(string uri) => File.Exists(Resolve(uri));

    /// <summary>Writes a file atomically: the content appears under <paramref name="uri"/> only when complete.</summary>
    public async Task<(string Sha256, long Bytes)> WriteAtomicAsync(string uri, Func<Stream, Task> write, CancellationToken ct = default)
    {
        var path = Resolve(uri);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}{TempSuffix}";
        try
        {
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                await write(file);
                await file.FlushAsync(ct);
                file.Flush(flushToDisk: true);
            }
            var (sha, bytes) = await HashFileAsync(temp, ct);
            File.Move(temp, path, overwrite: true);
            return (sha, bytes);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Writes records as a Parquet shard and returns its claim check.</summary>
    public async Task<ShardRef> WriteParquetAsync<T>(string uri, IReadOnlyCollection<T> rows, ShardDescriptor descriptor, CancellationToken ct = default)
        where T : class, new()
    {
        var (sha, bytes) = await WriteAtomicAsync(uri, s => ParquetSerializer.SerializeAsync(rows, s, cancellationToken: ct), ct);
        return new ShardRef(descriptor.ShardId, uri, sha, rows.Count, bytes, descriptor.Stage, descriptor.ConfigHash,
            descriptor.ParentShardIds, descriptor.RunId);
    }

    /// <summary>Reads a whole shard into memory after checking that it is the file its producer announced.</summary>
    public async Task<byte[]> ReadVerifiedAsync(ShardRef shard, CancellationToken ct = default)
    {
        var path = Resolve(shard.Uri);
        if (!File.Exists(path))
            throw new ShardRejectedException(shard.Uri, "the file does not exist");
        var data = await File.ReadAllBytesAsync(path, ct);
        var sha = Convert.ToHexStringLower(SHA256.HashData(data));
        if (!string.Equals(sha, shard.Sha256, StringComparison.OrdinalIgnoreCase))
            throw new ShardRejectedException(shard.Uri, $"checksum mismatch: expected {shard.Sha256}, file has {sha}");
        return data;
    }

    /// <summary>Reads and deserializes a Parquet shard; a file that does not parse is rejected, naming the shard.</summary>
    public async Task<IList<T>> ReadParquetAsync<T>(ShardRef shard, CancellationToken ct = default) where T : class, new()
    {
        var data = await ReadVerifiedAsync(shard, ct);
        return await ReadParquetBytesAsync<T>(shard.Uri, data, ct);
    }

    /// <summary>Reads a Parquet file without a claim check (CLI inspection, rebuilds).</summary>
    public async Task<IList<T>> ReadParquetUncheckedAsync<T>(string uri, CancellationToken ct = default) where T : class, new()
    {
        var path = Resolve(uri);
        if (!File.Exists(path)) throw new ShardRejectedException(uri, "the file does not exist");
        return await ReadParquetBytesAsync<T>(uri, await File.ReadAllBytesAsync(path, ct), ct);
    }

    private static async Task<IList<T>> ReadParquetBytesAsync<T>(string uri, byte[] data, CancellationToken ct) where T : class, new()
    {
        try
        {
            using var ms = new MemoryStream(data, writable: false);
            return (await ParquetSerializer.DeserializeAsync<T>(ms, cancellationToken: ct)).Data;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new ShardRejectedException(uri, $"not a readable Parquet shard of the expected schema ({e.Message})", e);
        }
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
