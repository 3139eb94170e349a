using Pipeline.Storage;
using Pipeline.Contracts.Rows;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Model;

/// <summary>
/// The token streams of a manifest (train and validation), and deterministic batches: the windows of step s depend
/// only on (seed, s), so a resumed run sees exactly the batches an uninterrupted one would.
/// </summary>
public sealed class TokenData
{
    private TokenData(int[] train, int[] validation, string tokenizerHash)
    {
        Train = train;
        Validation = validation;
        TokenizerHash = tokenizerHash;
    }

    public int[] Train { get; }
    public int[] Validation { get; }
    public string TokenizerHash { get; }

    /// <summary>True when the manifest had no validation documents and validation reads the tail of the training data.</summary>
    public bool ValidatesOnTrainingData { get; init; }

    /// <summary>Token streams already in memory (benchmarks, tests, alignment data).</summary>
    public static TokenData FromTokens(int[] train, int[] validation, string tokenizerHash) => new(train, validation, tokenizerHash);

    public static async Task<TokenData> LoadAsync(ShardStore store, string manifestUri, string? expectedTokenizerHash, int context, CancellationToken ct = default)
    {
        var manifest = await store.ReadTokenManifestAsync(manifestUri, ct);
        if (expectedTokenizerHash is not null && expectedTokenizerHash != manifest.TokenizerHash)
            throw new InvalidOperationException(
                $"manifest '{manifestUri}' was written with tokenizer {manifest.TokenizerHash}, but this run uses {expectedTokenizerHash}; refusing to mix tokenizers");
        var wide = manifest.Dtype == "int32";
        var train = new List<int>();
        var validation = new List<int>();
        foreach (var entry in manifest.Shards)
        {
            var shard = new Contracts.V1.ShardRef(entry.ShardId, entry.Uri, entry.Sha256, 0, 0, Contracts.StageNames.Tokenize, "", [], "");
            foreach (var row in await store.ReadParquetAsync<TokenRow>(shard, ct))
                (row.Split == "validation" ? validation : train).AddRange(TokenRow.Unpack(row.Tokens, wide));
        }
        if (train.Count <= context + 1)
            throw new InvalidOperationException($"manifest '{manifestUri}' has {train.Count} training tokens; at least {context + 2} are needed for context {context}");
        // A tiny corpus may have no validation documents: fall back to the tail of the training stream, and say so
        // (ValidatesOnTrainingData; the run's report prints a warning).
        var onTraining = validation.Count <= context + 1;
        if (onTraining) validation = train.Skip(Math.Max(0, train.Count - 4 * (context + 1))).ToList();
        return new TokenData(train.ToArray(), validation.ToArray(), manifest.TokenizerHash) { ValidatesOnTrainingData = onTraining };
    }

    public (Tensor X, Tensor Y) Batch(int[] source, long seed, long step, int micro, int batch, int context, Device device)
    {
        var random = new Random(unchecked((int)(seed * 1_000_003 + step * 7_919 + micro)));
        var x = new long[batch * context];
        var y = new long[batch * context];
        for (var b = 0; b < batch; b++)
        {
            var start = random.Next(0, source.Length - context - 1);
            for (var t = 0; t < context; t++)
            {
                x[b * context + t] = source[start + t];
                y[b * context + t] = source[start + t + 1];
            }
        }
        return (ToDevice(tensor(x, [batch, context]), device), ToDevice(tensor(y, [batch, context]), device));
    }

    /// <summary>On CUDA the batch goes through page-locked (pinned) memory, so the copy is a DMA that overlaps compute.</summary>
    private static Tensor ToDevice(Tensor batch, Device device) =>
        device.type == DeviceType.CUDA ? batch.pin_memory().to(device, non_blocking: true) : batch;

    /// <summary>
    /// Mean loss of <paramref name="model"/> over the first <paramref name="batches"/> validation batches (fixed windows,
    /// the same at every call, so losses of different steps and checkpoints compare).
    /// </summary>
    public double ValidationLoss(Gpt model, Device device, int batches = 4, int batchSize = 8)
    {
        model.eval();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        double total = 0;
        for (var i = 0; i < batches; i++)
        {
            var (x, y) = Batch(Validation, 424242, i, 0, batchSize, model.Config.Context, device);
            total += model.Loss(x, y).item<float>();
        }
        model.train();
        return total / batches;
    }
}
