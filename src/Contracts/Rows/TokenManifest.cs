using System.Text.Json;

namespace Pipeline.Contracts.Rows;

/// <summary>The list of token shards a trainer streams, bound to one tokenizer by hash.</summary>
public sealed record TokenManifest(string TokenizerHash, string TokenizerUri, int VocabSize, string Dtype, List<TokenShardEntry> Shards)
{
    public long TrainTokens => Shards.Sum(s => s.TrainTokens);
    public long ValidationTokens => Shards.Sum(s => s.ValidationTokens);

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

    public string ToJson() => JsonSerializer.Serialize(this, new JsonSerializerOptions { WriteIndented = true });
}

public sealed record TokenShardEntry(string ShardId, string Uri, string Sha256, long TrainTokens, long ValidationTokens);
