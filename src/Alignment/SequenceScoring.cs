using Pipeline.Model;
using static TorchSharp.torch;

namespace Pipeline.Alignment;

/// <summary>Batches of variable-length token sequences for SFT and DPO: right padding, labels masked with -100.</summary>
public static class SequenceScoring
{
    public const long Ignore = -100;

    /// <summary>
    /// Inputs and next-token labels for a batch: each sequence is truncated to the context and padded on the right;
    /// positions whose target is not trained (prompt, padding) get the ignore label. Causal attention means the
    /// trailing padding never influences the real positions, so no attention mask is needed.
    /// </summary>
    public static (Tensor Input, Tensor Labels) Batch(IReadOnlyList<(List<int> Ids, List<bool> Trained)> sequences, int context, int padId, Device device)
    {
        var length = Math.Min(context, sequences.Max(s => s.Ids.Count - 1));
        var input = new long[sequences.Count * length];
        var labels = new long[sequences.Count * length];
        Array.Fill(input, padId);
        Array.Fill(labels, Ignore);
        for (var b = 0; b < sequences.Count; b++)
        {
            var (ids, trained) = sequences[b];
            for (var t = 0; t < Math.Min(length, ids.Count - 1); t++)
            {
                input[b * length + t] = ids[t];
                labels[b * length + t] = trained[t + 1] ? ids[t + 1] : Ignore;
            }
        }
        return (tensor(input, [sequences.Count, length]).to(device), tensor(labels, [sequences.Count, length]).to(device));
    }

    /// <summary>Sum of log-probabilities of the labelled positions, per sequence (B).</summary>
    public static Tensor SequenceLogProbs(Gpt model, Tensor input, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var logProbs = model.forward(input).log_softmax(-1);
        var mask = labels != Ignore;
        var safe = labels.masked_fill(~mask, 0);
        var picked = logProbs.gather(-1, safe.unsqueeze(-1)).squeeze(-1) * mask.to(logProbs.dtype);
        return picked.sum(-1).MoveToOuterDisposeScope();
    }
}
