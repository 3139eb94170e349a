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
    /// The local folder of the tokenizer with this hash: one already under tokenizers/ on this host, else a run's
    /// tokenizer with that hash (named in the ledger) fetched from the object store; null when there is none.
    /// </summary>
    public static async Task<string?> FindTokenizerFolderAsync(ShardStore store, RunLedger ledger, string hash, CancellationToken ct = default)
    {
        if (TextTokenizer.FindFolder(store.Resolve("tokenizers"), hash) is { } local) return local;
        foreach (var key in ledger.KeysWithPrefix(LedgerKeys.Tokenizer("")))
        {
            if (ledger.Get(key) is not { } value || JsonSerializer.Deserialize<string[]>(value) is not [var uri, var h] || h != hash) continue;
            var folder = await store.FetchFolderAsync(uri, ct);
            if (Directory.Exists(folder)) return folder;
        }
        return null;
    }
}
