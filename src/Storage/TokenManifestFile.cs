using Pipeline.Contracts.Rows;

namespace Pipeline.Storage;

/// <summary>A token manifest as a file (the contract itself does no I/O).</summary>
public static class TokenManifestFile
{
    public static TokenManifest Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"token manifest '{path}' does not exist", path);
        return TokenManifest.Parse(File.ReadAllText(path), path);
    }

    /// <summary>Writes the manifest into the store through its one commit (<see cref="ShardStore.CommitFileAsync"/>).</summary>
    public static Task CommitAsync(this TokenManifest manifest, ShardStore store, string uri, CancellationToken ct = default)
    {
        var json = System.Text.Encoding.UTF8.GetBytes(manifest.ToJson());
        return store.CommitFileAsync(uri, s => s.WriteAsync(json, ct).AsTask(), ct);
    }
}
