using System.Text.Json;

namespace Pipeline.Tokenizer;

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

    public void Save(string path)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(this, new JsonSerializerOptions { WriteIndented = true }));
        File.Move(temp, path, overwrite: true);
    }
}

public sealed record TokenShardEntry(string ShardId, string Uri, string Sha256, long TrainTokens, long ValidationTokens);
