using static TorchSharp.torch;

namespace Pipeline.Model;

/// <summary>
/// Scoring a model's log-probabilities of given tokens, shared by evaluation (lm-eval's loglikelihood of a
/// continuation) and alignment (DPO's sequence log-probabilities).
/// </summary>
public static class LogProbs
{
    /// <summary>The label of a position that is not scored (a prompt token, padding), as PyTorch's ignore_index.</summary>
    public const long Ignore = -100;

    /// <summary>
    /// Sum of log-probabilities of the labelled positions, per sequence (B), in float64: <paramref name="labels"/>[b, t]
    /// is the token expected after <paramref name="input"/>[b, t], or <see cref="Ignore"/>.
    /// </summary>
    public static Tensor OfLabels(Gpt model, Tensor input, Tensor labels)
    {
        using var scope = NewDisposeScope();
        return PerToken(model, input, labels, float64).sum(-1).MoveToOuterDisposeScope();
    }

    /// <summary>Each labelled position's log-probability (B, T), 0 where the label is <see cref="Ignore"/> (RL's per-token ratios and KL).</summary>
    public static Tensor PerToken(Gpt model, Tensor input, Tensor labels, ScalarType? dtype = null)
    {
        using var scope = NewDisposeScope();
        return Picked(model.forward(input).log_softmax(-1), labels, dtype).MoveToOuterDisposeScope();
    }

    /// <summary>From log-probabilities (B, T, V) already computed, each labelled position's (B, T), 0 where the label is <see cref="Ignore"/>.</summary>
    public static Tensor Picked(Tensor logProbs, Tensor labels, ScalarType? dtype = null)
    {
        using var scope = NewDisposeScope();
        var mask = labels != Ignore;
        var safe = labels.masked_fill(~mask, 0);
        var picked = logProbs.gather(-1, safe.unsqueeze(-1)).squeeze(-1).to(dtype ?? float32);
        return (picked * mask.to(picked.dtype)).MoveToOuterDisposeScope();
    }
}
