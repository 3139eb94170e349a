using System.Text.Json;

namespace Pipeline.Contracts.Rows;

/// <summary>The list of token shards a trainer streams, bound to one tokenizer by hash.</summary>
public sealed record TokenManifest(string TokenizerHash, string TokenizerUri, int VocabSize, string Dtype, List<TokenShardEntry> Shards)
{
    public long TrainTokens => Shards.Sum(s => s.TrainTokens);
    public long ValidationTokens => Shards.Sum(s => s.ValidationTokens);

    public static TokenManifest Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"token manifest '{path}' does not exist", path);
        return Parse(File.ReadAllText(path), path);
    }

    public static TokenManifest Parse(string json, string name)
    {
        try
        {
            return JsonSerializer.Deserialize<TokenManifest>(json) ?? throw new InvalidDataException($"token manifest '{name}' is empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"token manifest '{name}' is not readable ({e.Message})", e);
        }
    }

    /// <summary>Writes the manifest (temp file, then rename); false when the file already held exactly this.</summary>
    public bool Save(string path)
    {
        var json = JsonSerializer.Serialize(this, new JsonSerializerOptions { WriteIndented = true });
        if (File.Exists(path) && File.ReadAllText(path) == json) return false;
        var temp = path + ".tmp";
        File.WriteAllText(temp, json);
        File.Move(temp, path, overwrite: true);
        return true;
    }
}

public sealed record TokenShardEntry(string ShardId, string Uri, string Sha256, long TrainTokens, long ValidationTokens);
