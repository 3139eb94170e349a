using Pipeline.Model;
using static TorchSharp.torch;

namespace Pipeline.Alignment;

/// <summary>Batches of variable-length token sequences for SFT and DPO: right padding, labels masked with -100.</summary>
public static class SequenceScoring
{
    public const long Ignore = LogProbs.Ignore;

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

    /// <summary>
    /// Groups examples into rows of at most <paramref name="context"/> input positions (an example of n tokens takes
    /// n - 1), first-fit in order of decreasing length, which fills rows well and is deterministic.
    /// </summary>
    public static List<List<int>> PackRows(IReadOnlyList<(List<int> Ids, List<bool> Trained)> examples, int context)
    {
        var rows = new List<(List<int> Members, int Used)>();
        foreach (var i in Enumerable.Range(0, examples.Count).OrderByDescending(i => examples[i].Ids.Count).ThenBy(i => i))
        {
            var need = Math.Min(context, examples[i].Ids.Count - 1);
            if (need <= 0) continue;
            var row = rows.FindIndex(r => r.Used + need <= context);
            if (row < 0) rows.Add(([i], need));
            else rows[row] = ([.. rows[row].Members, i], rows[row].Used + need);
        }
        return rows.Select(r => r.Members).ToList();
    }

    /// <summary>
    /// A batch of packed rows: each row is its sequences one after the other, then padding; labels as in
    /// <see cref="Batch"/>; the packing tells attention where each sequence starts and ends.
    /// </summary>
    public static (Tensor Input, Tensor Labels, SequencePacking Packing) PackedBatch(
        IReadOnlyList<IReadOnlyList<(List<int> Ids, List<bool> Trained)>> rows, int context, int padId, Device device)
    {
        var length = Math.Min(context, rows.Max(r => r.Sum(s => s.Ids.Count - 1)));
        var input = new long[rows.Count * length];
        var labels = new long[rows.Count * length];
        var segments = new long[rows.Count * length];
        var positions = new long[rows.Count * length];
        Array.Fill(input, padId);
        Array.Fill(labels, Ignore);
        Array.Fill(segments, -1);
        for (var b = 0; b < rows.Count; b++)
        {
            var at = b * length;
            var end = at + length;
            for (var s = 0; s < rows[b].Count && at < end; s++)
            {
                var (ids, trained) = rows[b][s];
                for (var t = 0; t < ids.Count - 1 && at < end; t++, at++)
                {
                    input[at] = ids[t];
                    labels[at] = trained[t + 1] ? ids[t + 1] : Ignore;
                    segments[at] = s;
                    positions[at] = t;
                }
            }
        }
        long[] shape = [rows.Count, length];
        return (tensor(input, shape).to(device), tensor(labels, shape).to(device),
            new SequencePacking(tensor(segments, shape).to(device), tensor(positions, shape).to(device)));
    }

    /// <summary>Sum of log-probabilities of the labelled positions, per sequence (B), as float32 (DPO's losses and references are).</summary>
    public static Tensor SequenceLogProbs(Gpt model, Tensor input, Tensor labels) => LogProbs.OfLabels(model, input, labels).to(float32);
}
