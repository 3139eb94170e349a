using Pipeline.Model;
using static TorchSharp.torch;

namespace Pipeline.Alignment;

public static partial class AlignmentTrainer
{
    /// <summary>
    /// PPO as InstructGPT and TRL's PPOTrainer run it: the policy carries a value head on its own trunk (<paramref name="policy"/>
    /// has a score head, read at every position); a batch of prompts gets one completion each from the KV-cache
    /// sampler; the reward model scores them (minus <see cref="AlignmentConfig.MissingEosPenalty"/> for a completion that
    /// never ended its turn); per-token rewards are −β·k1 to <paramref name="reference"/> with the score added at the
    /// last token (<see cref="PreferenceMath.PpoRewards"/>); GAE gives advantages (whitened) and returns; then
    /// <see cref="AlignmentConfig.PpoEpochs"/> steps optimize the clipped policy loss plus the clipped value loss on
    /// that batch before the next is sampled. Figures per step: score, kl, entropy, clip fraction, value loss, length.
    /// </summary>
    public static AlignmentReport Ppo(Gpt policy, Gpt reference, IReadOnlyList<List<int>> prompts, RolloutReward reward, AlignmentConfig config, int padId,
        ISet<int> stopTokens, int endOfTurn, Action<AlignmentStep>? onStep = null, CancellationToken ct = default,
        AlignmentResume? resume = null)
    {
        if (policy.ScoreHead is null) throw new ArgumentException("PPO's policy needs a value head (Gpt.WithScoreHead)");
        var (usable, device) = RlStart(policy, reference, prompts);
        var (loop, optimizer, update) = Loop(policy, config);
        var random = new Random((int)config.Seed);
        var (steps, figures) = (new List<(int, double, double, double)>(), new List<IReadOnlyDictionary<string, double>>());
        // A resumed job draws new rollouts at its first step; the prompts drawn before are replayed per rollout batch.
        var start = Resume(resume, policy, optimizer, random, 0, usable.Count);
        for (var batch = 0; batch < (start + config.PpoEpochs - 1) / config.PpoEpochs; batch++)
            for (var i = 0; i < Math.Min(config.BatchSize, usable.Count); i++) random.Next(usable.Count);
        var objective = new PpoObjective(policy, reference, usable, reward, random, config, padId, stopTokens, endOfTurn, device);
        Run(loop, start, config, objective, steps, onStep, resume, policy, optimizer, ct, figures);
        return new AlignmentReport(steps, 0, prompts.Count - usable.Count, usable.Count, usable.Count) { SkippedSteps = update.Skipped, StepFigures = figures };
    }
}

/// <summary>PPO's objective: a batch of rollouts every <see cref="AlignmentConfig.PpoEpochs"/> steps, and on each step the clipped policy and value losses on it.</summary>
internal sealed class PpoObjective(Gpt policy, Gpt reference, IReadOnlyList<(List<int> Ids, int Index)> prompts, RolloutReward reward, Random random,
    AlignmentConfig config, int padId, ISet<int> stopTokens, int endOfTurn, Device device) : ITrainingObjective, IResumableObjective
{
    private readonly Dictionary<string, double> _figures = [];
    private Rollouts? _rollouts;

    public IReadOnlyDictionary<string, double> Figures => _figures;

    /// <summary>β on k1 in the rewards: fixed, or steered towards <see cref="AlignmentConfig.KlTarget"/> (kept with a resumed job's state).</summary>
    public double KlCoefficient { get; set; } = config.EffectiveKlCoefficient;

    public IReadOnlyDictionary<string, double> State => new Dictionary<string, double> { ["kl_coefficient"] = KlCoefficient };

    public void Restore(IReadOnlyDictionary<string, double> state) => KlCoefficient = state.GetValueOrDefault("kl_coefficient", KlCoefficient);

    /// <summary>
    /// One batch of rollouts, response-aligned (B, R): <see cref="Positions"/> are the label positions of each response
    /// token in the padded batch, <see cref="Mask"/> marks real ones; the rest as PPO needs them, fixed for the batch.
    /// </summary>
    private sealed record Rollouts(Tensor Input, Tensor Labels, Tensor Positions, Tensor Mask, Tensor OldLogProbs, Tensor OldValues, Tensor Advantages, Tensor Returns)
    {
        public void Dispose()
        {
            foreach (var t in new[] { Input, Labels, Positions, Mask, OldLogProbs, OldValues, Advantages, Returns }) t.Dispose();
        }
    }

    public Tensor Loss(long step, int micro)
    {
        // Generation happens on a batch's first step only: the others spent none (the reward and KL figures stay the batch's).
        _figures["generate_seconds"] = 0;
        if (_rollouts is null || (step - 1) % config.PpoEpochs == 0)
        {
            _rollouts?.Dispose();
            _rollouts = Sample(step);
        }
        var r = _rollouts;
        var (logits, scores) = policy.ForwardWithScores(r.Input);
        var logProbs = logits.log_softmax(-1);
        var newLogProbs = LogProbs.Picked(logProbs, r.Labels).gather(1, r.Positions) * r.Mask;
        var values = scores.gather(1, r.Positions) * r.Mask;
        var (policyLoss, clipFraction) = PreferenceMath.PpoPolicyLoss(newLogProbs, r.OldLogProbs, r.Advantages, r.Mask, config.Clip);
        var valueLoss = PreferenceMath.PpoValueLoss(values, r.OldValues, r.Returns, r.Mask, config.ValueClip);
        using (no_grad())
        {
            // Entropy of the policy at the response positions, in nats.
            var atResponse = logProbs.gather(1, r.Positions.unsqueeze(-1).expand(-1, -1, logProbs.shape[2]));
            var entropy = -(atResponse.exp() * atResponse).sum(-1);
            _figures["entropy"] = PreferenceMath.MaskedMean(entropy, r.Mask).item<float>();
            _figures["clip_fraction"] = clipFraction.item<float>();
            _figures["value_loss"] = valueLoss.item<float>();
        }
        return policyLoss + config.ValueCoefficient * valueLoss;
    }

    private Rollouts Sample(long step)
    {
        var picks = Enumerable.Range(0, Math.Min(config.BatchSize, prompts.Count)).Select(_ => prompts[random.Next(prompts.Count)]).ToList();
        var batch = RolloutBatch.Sample(policy, picks, reward, config, step, padId, stopTokens, device);
        var (completions, scores, input, labels) = (batch.Completions, batch.Rewards, batch.Input, batch.Labels);
        if (config.MissingEosPenalty is { } penalty)
            for (var i = 0; i < scores.Length; i++)
                if (!completions[i].Contains(endOfTurn)) scores[i] -= (float)penalty;
        // Response token j of row b is the label at position (prompt length − 1 + j).
        var length = completions.Max(c => c.Count);
        var positions = new long[picks.Count * length];
        var valid = new float[picks.Count * length];
        for (var b = 0; b < picks.Count; b++)
            for (var j = 0; j < length; j++)
            {
                var inside = j < completions[b].Count && picks[b].Ids.Count - 1 + j < input.shape[1];
                positions[b * length + j] = inside ? picks[b].Ids.Count - 1 + j : 0;
                valid[b * length + j] = inside ? 1 : 0;
            }
        var at = tensor(positions, [picks.Count, length]).to(device);
        var mask = tensor(valid, [picks.Count, length]).to(device);
        using var _ = no_grad();
        var (logits, values) = policy.ForwardWithScores(input);
        var old = LogProbs.Picked(logits.log_softmax(-1), labels).gather(1, at) * mask;
        var referenceLogProbs = LogProbs.PerToken(reference, input, labels).gather(1, at) * mask;
        var oldValues = values.gather(1, at) * mask;
        var scoreTensor = tensor(scores).to(device);
        var rewards = PreferenceMath.PpoRewards(scoreTensor, old, referenceLogProbs, mask, KlCoefficient);
        var (advantages, returns) = PreferenceMath.Gae(rewards, oldValues, mask, config.Gamma, config.Lambda);
        advantages = PreferenceMath.Whiten(advantages, mask);
        _figures["reward"] = scoreTensor.mean().item<float>();
        var kl = ((old - referenceLogProbs) * mask).sum(1).mean().item<float>();
        _figures["kl"] = kl;
        _figures["kl_coefficient"] = KlCoefficient;
        // With a KL target, β is steered after the batch that measured it: the next batch's rewards use the new one.
        if (config.KlTarget is { } target) KlCoefficient = PreferenceMath.AdaptiveKlCoefficient(KlCoefficient, kl, target, picks.Count, config.KlHorizon);
        _figures["completion_length"] = completions.Average(c => c.Count);
        _figures["generate_seconds"] = batch.GenerateSeconds;
        return new Rollouts(input.DetachFromDisposeScope(), labels.DetachFromDisposeScope(), at.DetachFromDisposeScope(), mask.DetachFromDisposeScope(),
            old.DetachFromDisposeScope(), oldValues.DetachFromDisposeScope(), advantages.DetachFromDisposeScope(), returns.DetachFromDisposeScope());
    }
}
