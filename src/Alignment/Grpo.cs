using System.Diagnostics;
using Pipeline.Model;
using static TorchSharp.torch;

namespace Pipeline.Alignment;

/// <summary>The rewards of a batch of rollouts: each is the index of its prompt and the completion's tokens.</summary>
public delegate float[] RolloutReward(IReadOnlyList<(int Prompt, List<int> Completion)> rollouts);

public static partial class AlignmentTrainer
{
    /// <summary>
    /// GRPO (DeepSeekMath; TRL's GRPOTrainer with one iteration per batch): each step samples
    /// <see cref="AlignmentConfig.BatchSize"/> prompts, <see cref="AlignmentConfig.Generations"/> completions of each
    /// with the KV-cache sampler in one batch, scores them (<paramref name="reward"/>: a reward model or a verifier),
    /// takes each completion's advantage relative to its group, and minimizes <see cref="PreferenceMath.GrpoLoss"/>
    /// with the k3 KL to <paramref name="reference"/> (the frozen starting model). Figures per step: reward, kl,
    /// completion length, clip fraction and the seconds spent generating.
    /// </summary>
    /// <param name="prompts">Prompt token ids (each shorter than the context, so a completion fits).</param>
    public static AlignmentReport Grpo(Gpt policy, Gpt reference, IReadOnlyList<List<int>> prompts, RolloutReward reward, AlignmentConfig config, int padId,
        ISet<int> stopTokens, Action<AlignmentStep>? onStep = null, CancellationToken ct = default, AlignmentResume? resume = null)
    {
        var (usable, device) = RlStart(policy, reference, prompts);
        var (loop, optimizer, update) = Loop(policy, config);
        var random = new Random((int)config.Seed);
        var (steps, figures) = (new List<(int, double, double, double)>(), new List<IReadOnlyDictionary<string, double>>());
        var start = Resume(resume, policy, optimizer, random, Math.Min(config.BatchSize, usable.Count), usable.Count);
        var objective = new GrpoObjective(policy, reference, usable, reward, random, config, padId, stopTokens, device);
        Run(loop, start, config, objective, steps, onStep, resume, policy, optimizer, ct, figures);
        return new AlignmentReport(steps, 0, prompts.Count - usable.Count, usable.Count, usable.Count) { SkippedSteps = update.Skipped, StepFigures = figures };
    }

    /// <summary>What GRPO and PPO do before their loops: keep the prompts that leave room for a completion, and freeze the reference.</summary>
    private static (List<(List<int> Ids, int Index)> Usable, Device Device) RlStart(Gpt policy, Gpt reference, IReadOnlyList<List<int>> prompts)
    {
        var usable = prompts.Select((p, i) => (Ids: p, Index: i)).Where(p => p.Ids.Count > 0 && p.Ids.Count < policy.Config.Context - 1).ToList();
        if (usable.Count == 0) throw new InvalidDataException("no prompt leaves room for a completion in the model's context");
        foreach (var p in reference.parameters()) p.requires_grad = false;
        reference.eval();
        return (usable, policy.parameters().First().device);
    }
}

/// <summary>A batch of rollouts: a completion of each prompt, its reward, and the batch as inputs and labels (the completions' tokens labelled).</summary>
internal sealed record RolloutBatch(List<List<int>> Completions, float[] Rewards, double GenerateSeconds, Tensor Input, Tensor Labels)
{
    /// <summary>
    /// Samples a completion of each prompt (prompts may repeat, as GRPO's groups do) in one batch with the KV-cache
    /// sampler and scores them; the policy is left in training mode.
    /// </summary>
    public static RolloutBatch Sample(Gpt policy, IReadOnlyList<(List<int> Ids, int Index)> prompts, RolloutReward reward, AlignmentConfig config, long step,
        int padId, ISet<int> stopTokens, Device device)
    {
        var clock = Stopwatch.StartNew();
        // A seed per step, so a resumed job samples what an uninterrupted one would; no top-k or top-p, so the
        // completions are samples of the policy whose probabilities the ratios and the KL use.
        var sampling = new SamplingOptions { Temperature = config.Temperature, TopK = 0, TopP = 1, MaxNewTokens = config.MaxNewTokens, Seed = config.Seed * 1_000_003 + step };
        var completions = TextGenerator.GenerateBatch(policy, prompts.Select(p => (IReadOnlyList<int>)p.Ids).ToList(), sampling, stopTokens);
        var generating = clock.Elapsed.TotalSeconds;
        var rewards = reward(prompts.Select((p, i) => (p.Index, completions[i])).ToList());
        policy.train();
        var sequences = prompts.Select((p, i) => (Ids: p.Ids.Concat(completions[i]).ToList(),
            Trained: p.Ids.Select(_ => false).Concat(completions[i].Select(_ => true)).ToList())).ToList();
        var (input, labels) = SequenceScoring.Batch(sequences, policy.Config.Context, padId, device);
        return new RolloutBatch(completions, rewards, generating, input, labels);
    }
}

/// <summary>GRPO's objective: rollouts of a batch of prompts, their group-relative advantages, and the clipped loss with the KL penalty.</summary>
internal sealed class GrpoObjective(Gpt policy, Gpt reference, IReadOnlyList<(List<int> Ids, int Index)> prompts, RolloutReward reward, Random random,
    AlignmentConfig config, int padId, ISet<int> stopTokens, Device device) : ITrainingObjective
{
    private readonly Dictionary<string, double> _figures = [];

    public IReadOnlyDictionary<string, double> Figures => _figures;

    public Tensor Loss(long step, int micro)
    {
        var picks = Enumerable.Range(0, Math.Min(config.BatchSize, prompts.Count)).Select(_ => prompts[random.Next(prompts.Count)]).ToList();
        var batch = RolloutBatch.Sample(policy, picks.SelectMany(p => Enumerable.Repeat(p, config.Generations)).ToList(), reward, config, step, padId, stopTokens, device);
        var (completions, rewards, input, labels) = (batch.Completions, batch.Rewards, batch.Input, batch.Labels);
        var mask = (labels != SequenceScoring.Ignore).to(float32);
        var logProbs = LogProbs.PerToken(policy, input, labels);
        Tensor referenceLogProbs;
        using (no_grad()) referenceLogProbs = LogProbs.PerToken(reference, input, labels);
        // One optimization pass per batch of rollouts (TRL's num_iterations = 1): the sampling policy is this one,
        // so the ratio is 1 in value and carries the policy gradient.
        var oldLogProbs = logProbs.detach();
        var rewardTensor = tensor(rewards).to(device);
        var advantages = PreferenceMath.GrpoAdvantages(rewardTensor, config.Generations);
        using (no_grad())
        {
            _figures["reward"] = rewardTensor.mean().item<float>();
            _figures["reward_std"] = rewardTensor.view(-1, config.Generations).std(1).mean().item<float>();
            _figures["kl"] = PreferenceMath.MaskedMean(PreferenceMath.KlK3(logProbs, referenceLogProbs), mask).item<float>();
            _figures["completion_length"] = completions.Average(c => c.Count);
            _figures["clip_fraction"] = PreferenceMath.PpoPolicyLoss(logProbs, oldLogProbs, advantages.unsqueeze(1).expand_as(logProbs), mask, config.Clip).ClipFraction.item<float>();
            _figures["generate_seconds"] = batch.GenerateSeconds;
        }
        return PreferenceMath.GrpoLoss(logProbs, oldLogProbs, referenceLogProbs, advantages, mask, config.Clip, config.EffectiveKlCoefficient);
    }
}
