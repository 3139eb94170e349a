using Pipeline.Storage;
using Pipeline.Model;
using static TorchSharp.torch;

namespace Pipeline.Evaluator;

/// <summary>Validation-split perplexity of a checkpoint, on the token shards of the manifest it was trained on.</summary>
public static class PerplexityTask
{
    public const string Name = "validation_perplexity";
    public const string Version = "1";

    public static async Task<IReadOnlyDictionary<string, double>> RunAsync(ShardStore store, string checkpointFolder, string manifestUri, CancellationToken ct)
    {
        var info = Checkpoints.ReadInfo(checkpointFolder);
        var data = await TokenData.LoadAsync(store, manifestUri, info.TokenizerHash, info.Config.Model.Context, ct);
        var (model, _) = Checkpoints.Load(checkpointFolder, CPU);
        using (model)
        {
            var loss = data.ValidationLoss(model, CPU, batches: 8);
            return new Dictionary<string, double>
            {
                ["loss"] = loss,
                ["perplexity"] = Math.Exp(loss),
                ["bits_per_token"] = loss / Math.Log(2),
            };
        }
    }
}
