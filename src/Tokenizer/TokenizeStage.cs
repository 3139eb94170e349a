using Pipeline.Bpe;
using Pipeline.Contracts.V1;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Tokenizer;

/// <summary>
/// Tokenization as a per-shard stage: a kept-document shard is tokenized once its run has a vocabulary (before that
/// it waits in the ledger, and the vocabulary's training takes it up), and each token shard joins the run's manifest
/// as soon as the ledger records it.
/// </summary>
public sealed class TokenizeStage(CorpusTokenizer corpus, ShardStore store) : IShardStage
{
    public static string Name => CorpusTokenizer.Stage;

    // Loaded vocabularies by hash: one load per run, not per shard (a few runs at a time).
    private readonly Dictionary<string, TextTokenizer> _loaded = [];

    public bool IsReadyFor(string runId) => corpus.TokenizerOf(runId) is not null;

    public async Task<StageResult> ProcessAsync(ShardRef input, CancellationToken ct) =>
        await corpus.ProcessAsync(input, await TokenizerAsync(input.RunId, ct), ct);

    public async Task AfterRecordAsync(ShardRef input, StageResult result, CancellationToken ct) =>
        await corpus.WriteManifestAsync(input.RunId, await TokenizerAsync(input.RunId, ct), Named(input.RunId).Uri, ct);

    /// <summary>The run's vocabulary, fetched from the store the first time.</summary>
    public async Task<TextTokenizer> TokenizerAsync(string runId, CancellationToken ct)
    {
        var (uri, hash) = Named(runId);
        lock (_loaded)
            if (_loaded.TryGetValue(hash, out var cached)) return cached;
        var tokenizer = TextTokenizer.Load(await store.FetchFolderAsync(uri, ct));
        lock (_loaded)
        {
            if (_loaded.Count >= 8) _loaded.Clear();
            _loaded[hash] = tokenizer;
        }
        return tokenizer;
    }

    private (string Uri, string Hash) Named(string runId) =>
        corpus.TokenizerOf(runId) ?? throw new InvalidOperationException($"run {runId} has no tokenizer yet");
}
