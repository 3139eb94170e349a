using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Pipeline.Storage;

/// <summary>Deterministic ids and config hashes, so reprocessing the same input yields the same shard names.</summary>
public static class StableId
{
    public static string Of(params string[] parts)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\u001f', parts)));
        return Convert.ToHexStringLower(hash.AsSpan(0, 8));
    }

    public static string ConfigHash<T>(T config) =>
        Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(config)).AsSpan(0, 8));
}
