using Pipeline.Bpe;
using Pipeline.Model;
using Pipeline.Runtime;
using Pipeline.Storage;
using static TorchSharp.torch;

namespace Pipeline.Dedup;

/// <summary>
/// A document's embedding from the project's own model: the mean of the last hidden states (after the final norm) over
/// the text's first context-length tokens, L2-normalized. The alternative to <see cref="TextEmbedding"/> when a
/// checkpoint is named (Pipeline:SemanticDedup:Checkpoint, `pipeline semdedup --checkpoint`).
/// </summary>
public sealed class CheckpointEmbedding : IDisposable
{
    private readonly Gpt _model;
    private readonly TextTokenizer _tokenizer;
    private readonly object _gate = new();

    public CheckpointEmbedding(string checkpointFolder, TextTokenizer tokenizer)
    {
        (_model, var info) = Checkpoints.Load(checkpointFolder, CPU);
        if (info.TokenizerHash != tokenizer.Hash)
            throw new InvalidDataException($"checkpoint '{checkpointFolder}' was trained with tokenizer {info.TokenizerHash}, not {tokenizer.Hash}");
        _model.eval();
        _tokenizer = tokenizer;
        Name = $"checkpoint-{info.RunName}-{info.Step}-{_model.Config.Width}";
    }

    /// <summary>What made the embeddings (an embedding shard's config): vectors of different makers never meet in one clustering.</summary>
    public string Name { get; }

    public float[] Embed(string text)
    {
        var ids = _tokenizer.Encode(text).Take(_model.Config.Context).Select(i => (long)i).ToArray();
        if (ids.Length == 0) ids = [_tokenizer.EndOfText];
        // One document at a time through one model: the shard stage may run several shards at once.
        lock (_gate)
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            var mean = _model.Hidden(tensor(ids, [1, ids.Length])).mean([1])[0];
            return TextEmbedding.Normalize(mean.data<float>().ToArray());
        }
    }

    public void Dispose() => _model.Dispose();
}

/// <summary>
/// The embedding this service's embed stage makes: the hashed one, or, with a checkpoint configured
/// (Pipeline:SemanticDedup:Checkpoint: a path, or a URI under the data root fetched from the object store), that
/// checkpoint's, loaded once with the tokenizer its hash names.
/// </summary>
public sealed class EmbeddingSource(ShardStore store, Ledger ledger, string? checkpoint) : IDisposable
{
    private readonly SemaphoreSlim _load = new(1);
    private CheckpointEmbedding? _model;

    public const string Hashed = "hashed-1024";

    public async Task<(Func<string, float[]> Embed, string Name)> GetAsync(CancellationToken ct)
    {
        if (string.IsNullOrEmpty(checkpoint)) return (TextEmbedding.Embed, Hashed);
        await _load.WaitAsync(ct);
        try
        {
            if (_model is null)
            {
                var folder = Path.IsPathRooted(checkpoint) ? checkpoint : await store.FetchFolderAsync(checkpoint, ct);
                var hash = Checkpoints.ReadInfo(folder).TokenizerHash;
                var tokenizer = await RunArtifacts.FindTokenizerFolderAsync(store, ledger, hash, ct)
                    ?? throw new ArgumentException($"Pipeline:SemanticDedup:Checkpoint '{checkpoint}': no tokenizer with its hash {hash} under the data root");
                _model = new CheckpointEmbedding(folder, TextTokenizer.Load(tokenizer));
            }
            return (_model.Embed, _model.Name);
        }
        finally
        {
            _load.Release();
        }
    }

    public void Dispose() => _model?.Dispose();
}
