using System.Text.Json;
using Pipeline.Bpe;
using Pipeline.Storage;

namespace Pipeline.Runtime;

/// <summary>
/// Where one service finds what another wrote, for services that do not reference each other: a run's token manifest
/// (written by the tokenizer, read by the trainer, the evaluator and the run) and tokenizers by hash.
/// </summary>
public static class RunArtifacts
{
    public static string TokenManifestUri(string runId) => $"shards/tokens/{runId}/manifest.json";

    /// <summary>
    /// The folder of a run's own dedup indexes in a data root (the cleaner's exact-dedup claims, the MinHash-LSH index
    /// and, with S3, its changes and snapshots): runs side by side never share one.
    /// </summary>
    public static string IndexFolder(string runId) => $"index/runs/{SafeName.Check(runId, "run")}";

    /// <summary>Names a run's tokenizer in the ledger: the URI of its folder and its hash.</summary>
    public static void RecordTokenizer(Ledger ledger, string runId, string uri, string hash) =>
        ledger.Documents.Set(LedgerKeys.Tokenizer(runId), JsonSerializer.Serialize(new[] { uri, hash }));

    /// <summary>The URI and hash of a run's tokenizer, or null when it has none yet.</summary>
    public static (string Uri, string Hash)? TokenizerOf(Ledger ledger, string runId) =>
        ledger.Documents.Get(LedgerKeys.Tokenizer(runId)) is { } value
            ? ParseTokenizer(value) ?? throw new InvalidDataException($"ledger key {LedgerKeys.Tokenizer(runId)}: '{value}' is not [uri, hash]")
            : null;

    private static (string Uri, string Hash)? ParseTokenizer(string value) =>
        JsonSerializer.Deserialize<string[]>(value) is [var uri, var hash] ? (uri, hash) : null;

    /// <summary>
    /// The local folder of the tokenizer with this hash: one already under tokenizers/ on this host, else a run's
    /// tokenizer with that hash (named in the ledger) fetched from the object store; null when there is none.
    /// </summary>
    public static async Task<string?> FindTokenizerFolderAsync(ShardStore store, Ledger ledger, string hash, CancellationToken ct = default)
    {
        if (TextTokenizer.FindFolder(store.Resolve("tokenizers"), hash) is { } local) return local;
        foreach (var key in ledger.Documents.KeysWithPrefix(LedgerKeys.Tokenizer("")))
        {
            if (ledger.Documents.Get(key) is not { } value || ParseTokenizer(value) is not { } named || named.Hash != hash) continue;
            var folder = await store.FetchFolderAsync(named.Uri, ct);
            if (Directory.Exists(folder)) return folder;
        }
        return null;
    }
}
