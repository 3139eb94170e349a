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

    /// <summary>Writes the manifest (<see cref="AtomicWrite"/>); false when the file already held exactly this.</summary>
    public static bool Save(this TokenManifest manifest, string path)
    {
        var json = manifest.ToJson();
        if (File.Exists(path) && File.ReadAllText(path) == json) return false;
        AtomicWrite.Text(path, json);
        return true;
    }
}
