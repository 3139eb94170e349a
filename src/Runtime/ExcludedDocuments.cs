using System.Security.Cryptography;
using System.Text.Json;
using Pipeline.Storage;

namespace Pipeline.Runtime;

/// <summary>
/// A list of a run's documents that are not trained on (decontamination's, semantic dedup's): a JSON list of ids at
/// <see cref="Uri"/> in the store, recorded in the ledger under its key with its checksum and size. The stages that
/// decide write one; the tokenizer reads them all and skips those ids.
/// </summary>
public sealed record ExcludedDocuments(string Uri, string Sha256, int Documents)
{
    /// <summary>Commits the ids to <paramref name="uri"/> (whole, hashed, published) and records the list under <paramref name="key"/>.</summary>
    public static async Task<ExcludedDocuments> WriteAsync(ShardStore store, DocumentStore documents, string key, string uri, IReadOnlyCollection<string> ids, CancellationToken ct)
    {
        var sorted = new SortedSet<string>(ids, StringComparer.Ordinal);
        var (sha256, _) = await store.CommitFileAsync(uri, s => JsonSerializer.SerializeAsync(s, sorted, cancellationToken: ct), ct);
        var list = new ExcludedDocuments(uri, sha256, sorted.Count);
        documents.Set(key, JsonSerializer.Serialize(list));
        return list;
    }

    /// <summary>The ids of the list recorded under <paramref name="key"/> (none when there is none), its checksum checked.</summary>
    public static async Task<IReadOnlyCollection<string>> ReadAsync(ShardStore store, DocumentStore documents, string key, CancellationToken ct)
    {
        if (documents.Get(key) is not { } json) return [];
        var list = JsonSerializer.Deserialize<ExcludedDocuments>(json)!;
        var bytes = await File.ReadAllBytesAsync(await store.FetchFileAsync(list.Uri, ct), ct);
        if (!Convert.ToHexStringLower(SHA256.HashData(bytes)).Equals(list.Sha256, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{list.Uri}: checksum mismatch; the excluded-documents list was changed after it was written");
        return JsonSerializer.Deserialize<HashSet<string>>(bytes)!;
    }
}
