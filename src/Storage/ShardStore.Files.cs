using System.Text.Json;

namespace Pipeline.Storage;

/// <summary>
/// Files and folders that are not shards: tokenizers, checkpoints, manifests, staged task files. The host that makes
/// one writes it in the folder and publishes it; any other host fetches it before use. Without an object store these
/// are plain paths in the data root (every host shares it). A published folder is complete when its index is in the
/// bucket: the index (file names, sizes, SHA-256) goes up after every file, and a fetch checks each file against it.
/// </summary>
public sealed partial class ShardStore
{
    /// <summary>The object beside a published folder's files that lists them; a folder without it is not complete.</summary>
    public const string FolderIndex = ".folder.json";

    private sealed record FolderEntry(string Name, string Sha256, long Bytes);

    /// <summary>Whether files live in an object store too (a host's folder is then only its own).</summary>
    public bool HasObjectStore => _remote is not null;

    /// <summary>Where files go, for a log line: the data root, and the bucket when there is one.</summary>
    public string Describe() => _remote is null ? Root : $"{_remote.Describe("")} (cache {Root})";

    /// <summary>Checks that the object store (if any) answers and has its bucket (<see cref="IObjectStore.CheckAsync"/>).</summary>
    public Task CheckRemoteAsync(CancellationToken ct) => _remote?.CheckAsync(ct) ?? Task.CompletedTask;

    /// <summary>
    /// The way a folder artifact (a tokenizer, an index snapshot, a frontier snapshot, an adapter) enters the data
    /// root: written by <paramref name="write"/> under a temporary name of its own inside the confined root, renamed
    /// into place whole (<see cref="AtomicWrite"/>), then published to the object store when there is one.
    /// </summary>
    public async Task<T> CommitFolderAsync<T>(string uri, Func<string, T> write, CancellationToken ct = default)
    {
        var result = AtomicWrite.Folder(Resolve(uri), write);
        await PublishFolderAsync(uri, ct);
        return result;
    }

    public Task CommitFolderAsync(string uri, Action<string> write, CancellationToken ct = default) =>
        CommitFolderAsync(uri, temp => { write(temp); return true; }, ct);

    /// <summary>Puts a file written in place in the folder into the object store (nothing without one).</summary>
    public async Task PublishFileAsync(string uri, CancellationToken ct = default)
    {
        var path = Resolve(uri);
        if (_remote is null) return;
        if (!File.Exists(path)) throw new FileNotFoundException($"'{uri}' does not exist in '{Root}'; nothing to publish", path);
        await _remote.UploadAsync(uri, path, ct);
    }

    /// <summary>Puts every file of a folder into the object store, then the folder's index.</summary>
    public async Task PublishFolderAsync(string uri, CancellationToken ct = default)
    {
        var folder = Resolve(uri);
        if (_remote is null) return;
        var entries = new List<FolderEntry>();
        foreach (var file in Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var name = Path.GetRelativePath(folder, file).Replace(Path.DirectorySeparatorChar, '/');
            if (AtomicWrite.IsTemporary(name) || name == FolderIndex) continue;
            var (sha, bytes) = await HashFileAsync(file, ct);
            await _remote.UploadAsync($"{uri}/{name}", file, ct);
            entries.Add(new FolderEntry(name, sha, bytes));
        }
        var index = AtomicWrite.TempPathFor(folder) + ".index";
        try
        {
            await File.WriteAllTextAsync(index, JsonSerializer.Serialize(entries), ct);
            await _remote.UploadAsync($"{uri}/{FolderIndex}", index, ct);
        }
        finally
        {
            File.Delete(index);
        }
    }

    /// <summary>
    /// The local path of a folder, fetched from the object store first when this host lacks it (into a temporary
    /// folder, each file checked against the index, then renamed). A folder that exists nowhere yields its path, which
    /// does not exist, so the caller's own "not found" error names it.
    /// </summary>
    public async Task<string> FetchFolderAsync(string uri, CancellationToken ct = default)
    {
        var folder = Resolve(uri);
        if (_remote is null || Directory.Exists(folder)) return folder;
        var temp = AtomicWrite.TempPathFor(folder);
        try
        {
            Directory.CreateDirectory(temp);
            var indexPath = Path.Combine(temp, FolderIndex);
            if (!await _remote.TryDownloadAsync($"{uri}/{FolderIndex}", indexPath, ct)) return folder;
            List<FolderEntry> entries;
            try
            {
                entries = JsonSerializer.Deserialize<List<FolderEntry>>(await File.ReadAllTextAsync(indexPath, ct)) ?? [];
            }
            catch (JsonException e)
            {
                throw new ShardRejectedException(uri, $"{_remote.Describe($"{uri}/{FolderIndex}")} is not a folder index ({e.Message})", e);
            }
            File.Delete(indexPath);
            foreach (var entry in entries)
            {
                Resolve($"{uri}/{entry.Name}"); // an index naming '..' or an absolute path is refused like a message would be
                var target = Path.Combine(temp, entry.Name);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                if (!await _remote.TryDownloadAsync($"{uri}/{entry.Name}", target, ct))
                    throw new ShardRejectedException(uri, $"{_remote.Describe($"{uri}/{entry.Name}")} is listed in the folder's index but does not exist");
                var (sha, _) = await HashFileAsync(target, ct);
                if (!string.Equals(sha, entry.Sha256, StringComparison.OrdinalIgnoreCase))
                    throw new ShardRejectedException(uri, $"checksum mismatch: the index says {entry.Name} has {entry.Sha256}, {_remote.Describe($"{uri}/{entry.Name}")} has {sha}");
            }
            // Another fetch of the same folder may finish first; its copy is as good as this one.
            AtomicWrite.CommitFolderIfAbsent(temp, folder);
            return folder;
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>The URIs of the complete folders directly under <paramref name="parentUri"/>, here or in the object store, in name order.</summary>
    public async Task<IReadOnlyList<string>> ListFoldersAsync(string parentUri, CancellationToken ct = default)
    {
        var parent = Resolve(parentUri);
        var names = new SortedSet<string>(StringComparer.Ordinal);
        if (Directory.Exists(parent))
            foreach (var folder in Directory.GetDirectories(parent).Select(Path.GetFileName).OfType<string>())
                if (!AtomicWrite.IsTemporary(folder)) names.Add(folder);
        if (_remote is not null)
            await foreach (var key in _remote.ListAsync(parentUri + "/", ct))
            {
                var rest = key[(parentUri.Length + 1)..].Split('/');
                if (rest is [var name, FolderIndex]) names.Add(name);
            }
        return names.Select(name => $"{parentUri}/{name}").ToList();
    }

    /// <summary>Removes a published folder from the object store (its index first, so no host sees half of it).</summary>
    public async Task UnpublishFolderAsync(string uri, CancellationToken ct = default)
    {
        Resolve(uri);
        if (_remote is null) return;
        await _remote.DeleteAsync($"{uri}/{FolderIndex}", ct);
        await foreach (var key in _remote.ListAsync(uri + "/", ct)) await _remote.DeleteAsync(key, ct);
    }

    /// <summary>The local path of a file, fetched from the object store first when this host lacks it.</summary>
    public async Task<string> FetchFileAsync(string uri, CancellationToken ct = default)
    {
        var path = Resolve(uri);
        if (_remote is null || File.Exists(path)) return path;
        await DownloadAsync(uri, path, ct);
        return path;
    }

    /// <summary>A run's current token manifest, from wherever this host reads it (the object store, else the folder).</summary>
    public async Task<Pipeline.Contracts.Rows.TokenManifest> ReadTokenManifestAsync(string uri, CancellationToken ct = default) =>
        Pipeline.Contracts.Rows.TokenManifest.Parse(await ReadLatestTextAsync(uri, ct), uri);

    /// <summary>
    /// The current text of a file that its writer replaces as it goes (a run's token manifest): from the object store
    /// when there is one, without touching this host's copy (its writer may be on this host, mid-way), else from the folder.
    /// </summary>
    public async Task<string> ReadLatestTextAsync(string uri, CancellationToken ct = default)
    {
        var path = Resolve(uri);
        if (_remote is not null)
        {
            var temp = AtomicWrite.TempPathFor(Path.Combine(Path.GetTempPath(), "pipeline-latest"));
            try
            {
                if (await _remote.TryDownloadAsync(uri, temp, ct)) return await File.ReadAllTextAsync(temp, ct);
            }
            finally
            {
                File.Delete(temp);
            }
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"'{uri}' does not exist{(_remote is null ? "" : $" in {_remote.Describe(uri)} or")} in '{Root}'", path);
        return await File.ReadAllTextAsync(path, ct);
    }

    /// <summary>Fetches every file under <paramref name="prefixUri"/> (a folder URI) that this host lacks.</summary>
    public async Task FetchTreeAsync(string prefixUri, CancellationToken ct = default)
    {
        Resolve(prefixUri);
        if (_remote is null) return;
        var keys = new List<string>();
        await foreach (var key in _remote.ListAsync(prefixUri + "/", ct)) keys.Add(key);
        foreach (var key in keys)
        {
            var path = Resolve(key);
            if (!File.Exists(path)) await DownloadAsync(key, path, ct);
        }
    }

    /// <summary>Downloads an object to <paramref name="path"/> under a temporary name, then renames it; false when there is no such object.</summary>
    private async Task<bool> DownloadAsync(string uri, string path, CancellationToken ct)
    {
        var temp = AtomicWrite.Begin(path);
        try
        {
            if (!await _remote!.TryDownloadAsync(uri, temp, ct)) return false;
            AtomicWrite.Commit(temp, path);
            return true;
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
