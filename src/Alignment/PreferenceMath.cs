using static TorchSharp.torch;

namespace Pipeline.Alignment;

/// <summary>
/// The losses and estimates of reward modelling and reinforcement learning from feedback, as TRL defines them
/// (RewardTrainer, PPOTrainer, GRPOTrainer) and DeepSeekMath defines GRPO. Each works on (batch, tokens) tensors with a
/// mask of the response tokens; tests/interop computes the same from the same tensors in numpy.
/// </summary>
public static class PreferenceMath
{
    /// <summary>
    /// Bradley–Terry: mean of −log σ(r_chosen − r_rejected − margin), plus TRL's optional reward centering,
    /// coefficient × mean((r_chosen + r_rejected)²), which keeps rewards near zero.
    /// </summary>
    public static Tensor BradleyTerryLoss(Tensor chosen, Tensor rejected, Tensor? margin = null, double centering = 0)
    {
        var difference = chosen - rejected;
        if (margin is not null) difference -= margin;
        var loss = -nn.functional.logsigmoid(difference).mean();
        return centering > 0 ? loss + centering * (chosen + rejected).pow(2).mean() : loss;
    }

    /// <summary>
    /// Generalized advantage estimation over each row's tokens, from the last backwards: δ_t = r_t + γ V_{t+1} − V_t
    /// (no value after the last token), A_t = δ_t + γλ A_{t+1}; returns = A + V. Masked positions hold 0.
    /// </summary>
    public static (Tensor Advantages, Tensor Returns) Gae(Tensor rewards, Tensor values, Tensor mask, double gamma, double lambda)
    {
        var length = rewards.shape[1];
        var advantages = new Tensor[length];
        var next = zeros_like(values.select(1, 0));
        var nextValue = zeros_like(next);
        for (var t = length - 1; t >= 0; t--)
        {
            var m = mask.select(1, t);
            var delta = rewards.select(1, t) + gamma * nextValue - values.select(1, t);
            next = (delta + gamma * lambda * next) * m;
            nextValue = values.select(1, t) * m;
            advantages[t] = next;
        }
        var a = stack(advantages, 1);
        return (a, (a + values) * mask);
    }

    /// <summary>Mean over the masked entries.</summary>
    public static Tensor MaskedMean(Tensor x, Tensor mask) => (x * mask).sum() / mask.sum();

    /// <summary>Advantage whitening over the masked entries: (x − mean) / sqrt(unbiased variance + 1e-8), as TRL's masked_whiten.</summary>
    public static Tensor Whiten(Tensor x, Tensor mask)
    {
        var mean = MaskedMean(x, mask);
        var count = mask.sum();
        var variance = MaskedMean((x - mean).pow(2), mask) * count / (count - 1);
        return (x - mean) * rsqrt(variance + 1e-8) * mask;
    }

    /// <summary>
    /// PPO's clipped policy loss: mean over response tokens of max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε)), ρ = exp(log π − log π_old);
    /// and the fraction of tokens where the clipped term was the larger.
    /// </summary>
    public static (Tensor Loss, Tensor ClipFraction) PpoPolicyLoss(Tensor logProbs, Tensor oldLogProbs, Tensor advantages, Tensor mask, double clip)
    {
        var ratio = (logProbs - oldLogProbs).exp();
        var unclipped = -advantages * ratio;
        var clipped = -advantages * ratio.clamp(1 - clip, 1 + clip);
        return (MaskedMean(maximum(unclipped, clipped), mask), MaskedMean(clipped.gt(unclipped).to(ScalarType.Float32), mask));
    }

    /// <summary>PPO's clipped value loss: ½ mean of max((V − R)², (clip(V, V_old ± ε) − R)²) over response tokens.</summary>
    public static Tensor PpoValueLoss(Tensor values, Tensor oldValues, Tensor returns, Tensor mask, double clip)
    {
        var clipped = oldValues + (values - oldValues).clamp(-clip, clip);
        return 0.5 * MaskedMean(maximum((values - returns).pow(2), (clipped - returns).pow(2)), mask);
    }

    /// <summary>
    /// Per-token rewards of PPO: −β·k1 at every response token, k1 = log π_old − log π_ref, and the reward model's score
    /// added at each row's last response token.
    /// </summary>
    public static Tensor PpoRewards(Tensor scores, Tensor oldLogProbs, Tensor refLogProbs, Tensor mask, double klCoefficient)
    {
        var rewards = -klCoefficient * (oldLogProbs - refLogProbs) * mask;
        var last = (mask.sum(1) - 1).to(ScalarType.Int64).clamp_min(0);
        return rewards.scatter_add(1, last.unsqueeze(1), scores.unsqueeze(1));
    }

    /// <summary>
    /// The adaptive KL coefficient's next value (Ziegler et al. 2019; TRL's AdaptiveKLController): β·(1 + e·n/horizon)
    /// with e = clip(kl/target − 1, −0.2, 0.2), after a batch of n completions whose mean KL was <paramref name="kl"/>.
    /// </summary>
    public static double AdaptiveKlCoefficient(double beta, double kl, double target, int completions, int horizon) =>
        beta * (1 + Math.Clamp(kl / target - 1, -0.2, 0.2) * completions / horizon);

    /// <summary>The k3 estimate of KL(π ‖ π_ref) per token (Schulman): exp(log π_ref − log π) − (log π_ref − log π) − 1, never negative.</summary>
    public static Tensor KlK3(Tensor logProbs, Tensor refLogProbs)
    {
        var d = refLogProbs - logProbs;
        return d.exp() - d - 1;
    }

    /// <summary>GRPO's advantages: each reward minus its group's mean, over the group's (unbiased) standard deviation + 1e-4; groups are consecutive.</summary>
    public static Tensor GrpoAdvantages(Tensor rewards, int groupSize)
    {
        var groups = rewards.view(-1, groupSize);
        var mean = groups.mean([1], keepdim: true);
        var std = groups.std(1, keepdim: true);
        return ((groups - mean) / (std + 1e-4)).view(-1);
    }

    /// <summary>
    /// GRPO's loss: per token −(min(ρ·A, clip(ρ, 1 − ε, 1 + ε)·A) − β·k3), averaged over each sequence's response tokens,
    /// then over sequences (DeepSeekMath; TRL's "grpo" loss type). A is the sequence's advantage.
    /// </summary>
    public static Tensor GrpoLoss(Tensor logProbs, Tensor oldLogProbs, Tensor refLogProbs, Tensor advantages, Tensor mask, double clip, double beta)
    {
        var ratio = (logProbs - oldLogProbs).exp();
        var a = advantages.unsqueeze(1);
        var surrogate = minimum(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a);
        var perToken = -(surrogate - beta * KlK3(logProbs, refLogProbs));
        return ((perToken * mask).sum(1) / mask.sum(1)).mean();
    }
}
