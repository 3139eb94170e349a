using Pipeline.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Alignment;

/// <summary>
/// The SFT and DPO loops, nanoGPT-style and short: seeded batches, AdamW on the trainable parameters (LoRA adapters
/// only when LoRA is on), loss only on assistant tokens. DPO's reference log-probabilities are computed once with the
/// starting weights, which is the frozen reference model exactly, at the cost of one forward pass per pair.
/// </summary>
public static partial class AlignmentTrainer
{
    /// <param name="resume">Where the job's state is saved as it goes and restored from at the start (null: neither).</param>
    public static AlignmentReport Sft(Gpt model, IReadOnlyList<(List<int> Ids, List<bool> Trained)> examples, AlignmentConfig config, int padId,
        Action<AlignmentStep>? onStep = null, CancellationToken ct = default, AlignmentResume? resume = null)
    {
        var (kept, truncated, dropped, untrainable) = Fit(examples, model.Config.Context + 1, config.TooLong);
        if (kept.Count == 0) throw new InvalidDataException($"no SFT example with trained tokens fits the model's context ({truncated} truncated, {dropped} dropped, {untrainable} left without trained tokens)");
        var (loop, optimizer, update) = Loop(model, config);
        var random = new Random((int)config.Seed);
        var steps = new List<(int, double, double, double)>();
        var device = model.parameters().First().device;
        var context = model.Config.Context;
        // Without packing every row holds one example, so both paths sample rows the same way.
        var rows = config.Packing
            ? SequenceScoring.PackRows(kept, context).Select(r => (IReadOnlyList<(List<int>, List<bool>)>)r.Select(i => kept[i]).ToList()).ToList()
            : kept.Select(e => (IReadOnlyList<(List<int>, List<bool>)>)[e]).ToList();
        var start = Resume(resume, model, optimizer, random, config.BatchSize, rows.Count);
        var objective = new SftObjective(model, rows, random, config, padId, device);
        Run(loop, start, config, objective, steps, onStep, resume, model, optimizer, ct);
        return new AlignmentReport(steps, truncated, dropped, kept.Count, rows.Count) { Untrainable = untrainable, SkippedSteps = update.Skipped };
    }

    public static AlignmentReport Dpo(Gpt model, IReadOnlyList<(List<int> Prompt, List<int> Chosen, List<int> Rejected)> pairs, AlignmentConfig config, int padId,
        Action<AlignmentStep>? onStep = null, CancellationToken ct = default, AlignmentResume? resume = null)
    {
        var (kept, truncated, dropped) = FitPairs(pairs, model.Config.Context + 1, config.TooLong);
        var device = model.parameters().First().device;
        var (loop, optimizer, update) = Loop(model, config);

        // Reference log-probabilities with the starting weights (the frozen reference model).
        var reference = new (double Chosen, double Rejected)[kept.Count];
        model.eval();
        using (no_grad())
        {
            for (var i = 0; i < kept.Count; i++)
            {
                using var scope = NewDisposeScope();
                reference[i] = (Score(model, kept[i].Chosen, padId, device).item<float>(), Score(model, kept[i].Rejected, padId, device).item<float>());
            }
        }
        var random = new Random((int)config.Seed);
        var steps = new List<(int, double, double, double)>();
        // Restored after the reference pass: the reference is the base model, not the state reached.
        var start = Resume(resume, model, optimizer, random, Math.Min(config.BatchSize, kept.Count), kept.Count);
        var objective = new DpoObjective(model, kept, reference, random, config, padId, device);
        Run(loop, start, config, objective, steps, onStep, resume, model, optimizer, ct);
        return new AlignmentReport(steps, truncated, dropped, kept.Count, kept.Count) { SkippedSteps = update.Skipped };
    }

    /// <summary>
    /// A reward model (TRL's RewardTrainer): <paramref name="model"/> has a score head (<see cref="Gpt.WithScoreHead"/>),
    /// trained with the Bradley–Terry loss (<see cref="PreferenceMath.BradleyTerryLoss"/>, with TRL's optional reward
    /// centering) to score each pair's chosen reply above its rejected one. A seeded <see cref="AlignmentConfig.EvalFraction"/>
    /// of the pairs is held out and never trained on; the report gives its accuracy and mean margin after training.
    /// </summary>
    public static AlignmentReport Reward(Gpt model, IReadOnlyList<(List<int> Prompt, List<int> Chosen, List<int> Rejected)> pairs, AlignmentConfig config, int padId,
        Action<AlignmentStep>? onStep = null, CancellationToken ct = default, AlignmentResume? resume = null)
    {
        if (model.ScoreHead is null) throw new ArgumentException("a reward model needs a score head (Gpt.WithScoreHead)");
        // The whole sequence is read (no next-token shift), so it may fill the context exactly.
        var (kept, truncated, dropped) = FitPairs(pairs, model.Config.Context, config.TooLong);
        var shuffled = kept.ToList();
        new Random((int)config.Seed).Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(shuffled));
        var heldCount = kept.Count >= 10 ? (int)Math.Round(kept.Count * config.EvalFraction) : 0;
        var heldOut = shuffled.Take(heldCount).ToList();
        var train = shuffled.Skip(heldCount).ToList();
        var device = model.parameters().First().device;
        var (loop, optimizer, update) = Loop(model, config);
        var random = new Random((int)config.Seed);
        var steps = new List<(int, double, double, double)>();
        var start = Resume(resume, model, optimizer, random, Math.Min(config.BatchSize, train.Count), train.Count);
        var objective = new RewardObjective(model, train, random, config, padId, device);
        Run(loop, start, config, objective, steps, onStep, resume, model, optimizer, ct);
        return new AlignmentReport(steps, truncated, dropped, train.Count, train.Count)
        {
            SkippedSteps = update.Skipped,
            HeldOut = heldOut.Count == 0 ? null : RewardAccuracy(model, heldOut, padId, config.BatchSize),
        };
    }

    /// <summary>How often a reward model scores the chosen reply above the rejected one, and the mean margin.</summary>
    public static HeldOutRewards RewardAccuracy(Gpt model, IReadOnlyList<((List<int> Ids, List<bool> Trained) Chosen, (List<int> Ids, List<bool> Trained) Rejected)> pairs,
        int padId, int batchSize)
    {
        var chosen = BatchedRewards(model, pairs.Select(p => p.Chosen.Ids).ToList(), padId, batchSize);
        var rejected = BatchedRewards(model, pairs.Select(p => p.Rejected.Ids).ToList(), padId, batchSize);
        var difference = chosen.Zip(rejected, (c, r) => (double)c - r).ToList();
        return new HeldOutRewards(pairs.Count, difference.Count(d => d > 0) / (double)pairs.Count, difference.Sum() / pairs.Count);
    }

    /// <summary>A reward model's rewards for token sequences, scored in batches of <paramref name="batchSize"/> without gradients.</summary>
    public static float[] BatchedRewards(Gpt model, IReadOnlyList<List<int>> sequences, int padId, int batchSize)
    {
        var device = model.parameters().First().device;
        model.eval();
        using var _ = no_grad();
        var rewards = new List<float>(sequences.Count);
        foreach (var batch in sequences.Chunk(Math.Max(1, batchSize)))
        {
            using var scope = NewDisposeScope();
            rewards.AddRange(Rewards(model, batch, padId, device).to(float32).data<float>().ToArray());
        }
        return [.. rewards];
    }

    /// <summary>A reward model's rewards for token sequences (B), right-padded into one batch.</summary>
    public static Tensor Rewards(Gpt model, IReadOnlyList<List<int>> sequences, int padId, Device device)
    {
        var length = sequences.Max(s => s.Count);
        var ids = new long[sequences.Count * length];
        Array.Fill(ids, padId);
        for (var b = 0; b < sequences.Count; b++)
            for (var t = 0; t < sequences[b].Count; t++) ids[b * length + t] = sequences[b][t];
        return model.Rewards(tensor(ids, [sequences.Count, length]).to(device), tensor(sequences.Select(s => (long)s.Count).ToArray()).to(device));
    }

    /// <summary>
    /// Each pair as its two full sequences (prompt + reply) of at most <paramref name="limit"/> tokens. A longer pair is
    /// dropped, or, as TRL truncates: the prompt loses its start (its end leads into the reply), then the replies their
    /// ends; the prompt keeps at least half the room, so a long reply cannot leave the model no context at all.
    /// </summary>
    private static (List<((List<int> Ids, List<bool> Trained) Chosen, (List<int> Ids, List<bool> Trained) Rejected)> Kept, int Truncated, int Dropped) FitPairs(
        IReadOnlyList<(List<int> Prompt, List<int> Chosen, List<int> Rejected)> pairs, int limit, TooLongExamples tooLong)
    {
        var kept = new List<((List<int> Ids, List<bool> Trained) Chosen, (List<int> Ids, List<bool> Trained) Rejected)>();
        int truncated = 0, dropped = 0;
        foreach (var (prompt, chosen, rejected) in pairs)
        {
            var longest = Math.Max(chosen.Count, rejected.Count);
            if (prompt.Count + longest <= limit)
            {
                kept.Add((Join(prompt, chosen), Join(prompt, rejected)));
                continue;
            }
            if (tooLong == TooLongExamples.Drop)
            {
                dropped++;
                continue;
            }
            truncated++;
            var promptKeep = Math.Min(prompt.Count, Math.Max(limit / 2, limit - longest));
            var keptPrompt = prompt.Skip(prompt.Count - promptKeep).ToList();
            var room = limit - promptKeep;
            kept.Add((Join(keptPrompt, chosen.Take(room).ToList()), Join(keptPrompt, rejected.Take(room).ToList())));
        }
        if (kept.Count == 0) throw new InvalidDataException("no preference pair fits the model's context");
        return (kept, truncated, dropped);
    }

    /// <summary>
    /// Restores a saved state, and draws the batches of the steps it covers from <paramref name="random"/> so that the
    /// next batch is the one an uninterrupted job would draw. Returns the step to continue after.
    /// </summary>
    private static int Resume(AlignmentResume? resume, Gpt model, TorchSharp.Modules.AdamW optimizer, Random random, int drawsPerStep, int population)
    {
        var start = resume?.Restore(model, optimizer) ?? 0;
        for (var draw = 0L; draw < (long)start * drawsPerStep; draw++) random.Next(population);
        return start;
    }

    /// <summary>
    /// Runs the objective in the one training loop, recording each step (a skipped one with a NaN loss), and saves
    /// the job's state every <see cref="AlignmentResume.Every"/> steps (not after the last: the job then writes its
    /// result) and at the step reached when it is stopped.
    /// </summary>
    private static void Run(TrainingLoop loop, int start, AlignmentConfig config, ITrainingObjective objective, List<(int Step, double, double, double)> steps,
        Action<AlignmentStep>? onStep, AlignmentResume? resume, Gpt model, TorchSharp.Modules.AdamW optimizer, CancellationToken ct,
        List<IReadOnlyDictionary<string, double>>? figures = null)
    {
        var stateful = objective as IResumableObjective;
        if (stateful is not null && resume?.RestoredState is { } restored) stateful.Restore(restored);
        loop.RunAsync(start, config.Steps, objective, outcome =>
        {
            var step = (int)outcome.Step;
            var loss = outcome.Applied ? outcome.Loss : double.NaN;
            var (margin, accuracy) = (outcome.Figures.GetValueOrDefault("margin"), outcome.Figures.GetValueOrDefault("accuracy"));
            steps.Add((step, loss, margin, accuracy));
            var stepFigures = new Dictionary<string, double>(outcome.Figures);
            figures?.Add(stepFigures);
            onStep?.Invoke(new AlignmentStep(step, loss, margin, accuracy, stepFigures));
            if (resume is not null && step < config.Steps && step % resume.Every == 0) resume.Save(step, model, optimizer, stateful?.State);
            return Task.FromResult(true);
        }, ct).GetAwaiter().GetResult(); // every hook here is synchronous: the task is complete when it returns
        if (resume is not null && ct.IsCancellationRequested && steps.Count > 0 && steps[^1].Step < config.Steps && steps[^1].Step % resume.Every != 0)
            resume.Save(steps[^1].Step, model, optimizer, stateful?.State);
    }

    /// <summary>Sum of log-probabilities of a sequence's trained tokens under the model.</summary>
    public static Tensor Score(Gpt model, (List<int> Ids, List<bool> Trained) sequence, int padId, Device device)
    {
        var (input, labels) = SequenceScoring.Batch([sequence], model.Config.Context, padId, device);
        return SequenceScoring.SequenceLogProbs(model, input, labels)[0];
    }

    private static (List<int> Ids, List<bool> Trained) Join(List<int> prompt, List<int> reply) =>
        ([.. prompt, .. reply], [.. prompt.Select(_ => false), .. reply.Select(_ => true)]);

    private static (List<(List<int> Ids, List<bool> Trained)> Kept, int Truncated, int Dropped, int Untrainable) Fit(
        IReadOnlyList<(List<int> Ids, List<bool> Trained)> examples, int limit, TooLongExamples tooLong)
    {
        var kept = new List<(List<int>, List<bool>)>();
        int truncated = 0, dropped = 0, untrainable = 0;
        foreach (var (ids, trained) in examples)
        {
            if (ids.Count <= limit) kept.Add((ids, trained));
            else if (tooLong == TooLongExamples.Drop) dropped++;
            else if (!trained.Take(limit).Skip(1).Any(t => t))
                untrainable++; // the cut removed every assistant token: a row with no labels would make the loss 0/0
            else
            {
                truncated++;
                kept.Add((ids.Take(limit).ToList(), trained.Take(limit).ToList()));
            }
        }
        return (kept, truncated, dropped, untrainable);
    }

    /// <summary>
    /// The training loop of an alignment job: AdamW on the trainable parameters (the LoRA adapters only, with LoRA),
    /// the pretraining loop's safeguards (<see cref="GuardedUpdate"/>), at the learning rate of TRL's default
    /// schedule: linear warm-up, then linear decay to 0.
    /// </summary>
    private static (TrainingLoop Loop, TorchSharp.Modules.AdamW Optimizer, GuardedUpdate Update) Loop(Gpt model, AlignmentConfig config)
    {
        var optimizer = Prepare(model, config);
        var update = new GuardedUpdate(model.parameters().Where(p => p.requires_grad).ToList(), optimizer, config.GradClip, "alignment");
        double Schedule(long step) => config.EffectiveLearningRate * (step <= config.WarmupSteps
            ? (double)step / Math.Max(1, config.WarmupSteps)
            : Math.Max(0.0, (double)(config.Steps - step + 1) / Math.Max(1, config.Steps - config.WarmupSteps)));
        return (new TrainingLoop(model, optimizer, update, Schedule), optimizer, update);
    }

    private static TorchSharp.Modules.AdamW Prepare(Gpt model, AlignmentConfig config)
    {
        manual_seed(config.Seed);
        if (config.LoraRank > 0) model.AddLora(config.LoraRank, config.LoraAlpha, config.LoraDropout, config.LoraTargets);
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        return optim.AdamW(trainable, lr: config.EffectiveLearningRate, weight_decay: config.WeightDecay);
    }
}

/// <summary>SFT's objective: the loss on assistant tokens of a batch of rows drawn from a generator seeded once (packed rows hold several examples).</summary>
internal sealed class SftObjective(Gpt model, IReadOnlyList<IReadOnlyList<(List<int> Ids, List<bool> Trained)>> rows, Random random, AlignmentConfig config, int padId, Device device)
    : ITrainingObjective
{
    public Tensor Loss(long step, int micro)
    {
        var batch = Enumerable.Range(0, config.BatchSize).Select(_ => rows[random.Next(rows.Count)]).ToList();
        Tensor input, labels;
        SequencePacking? packing = null;
        if (config.Packing) (input, labels, packing) = SequenceScoring.PackedBatch(batch, model.Config.Context, padId, device);
        else (input, labels) = SequenceScoring.Batch(batch.Select(r => r[0]).ToList(), model.Config.Context, padId, device);
        return model.Loss(input, labels, SequenceScoring.Ignore, packing);
    }
}

/// <summary>The reward model's objective: the Bradley–Terry loss of a batch of pairs, with the mean reward margin and accuracy as figures.</summary>
internal sealed class RewardObjective(Gpt model, IReadOnlyList<((List<int> Ids, List<bool> Trained) Chosen, (List<int> Ids, List<bool> Trained) Rejected)> pairs,
    Random random, AlignmentConfig config, int padId, Device device) : ITrainingObjective
{
    private readonly Dictionary<string, double> _figures = [];

    public IReadOnlyDictionary<string, double> Figures => _figures;

    public Tensor Loss(long step, int micro)
    {
        var indexes = Enumerable.Range(0, Math.Min(config.BatchSize, pairs.Count)).Select(_ => random.Next(pairs.Count)).ToList();
        var chosen = AlignmentTrainer.Rewards(model, indexes.Select(i => pairs[i].Chosen.Ids).ToList(), padId, device);
        var rejected = AlignmentTrainer.Rewards(model, indexes.Select(i => pairs[i].Rejected.Ids).ToList(), padId, device);
        using (no_grad())
        {
            var difference = chosen - rejected;
            (_figures["margin"], _figures["accuracy"]) = (difference.mean().item<float>(), (difference > 0).to(float32).mean().item<float>());
        }
        return PreferenceMath.BradleyTerryLoss(chosen, rejected, centering: config.CenterRewards);
    }
}

/// <summary>DPO's objective: the preference loss of a batch of pairs against the reference log-probabilities, with the reward margin and accuracy as figures.</summary>
internal sealed class DpoObjective(Gpt model, IReadOnlyList<((List<int> Ids, List<bool> Trained) Chosen, (List<int> Ids, List<bool> Trained) Rejected)> pairs,
    IReadOnlyList<(double Chosen, double Rejected)> reference, Random random, AlignmentConfig config, int padId, Device device) : ITrainingObjective
{
    private readonly Dictionary<string, double> _figures = [];

    public IReadOnlyDictionary<string, double> Figures => _figures;

    public Tensor Loss(long step, int micro)
    {
        var indexes = Enumerable.Range(0, Math.Min(config.BatchSize, pairs.Count)).Select(_ => random.Next(pairs.Count)).ToList();
        var (cIn, cLabels) = SequenceScoring.Batch(indexes.Select(i => pairs[i].Chosen).ToList(), model.Config.Context, padId, device);
        var (rIn, rLabels) = SequenceScoring.Batch(indexes.Select(i => pairs[i].Rejected).ToList(), model.Config.Context, padId, device);
        var policyChosen = SequenceScoring.SequenceLogProbs(model, cIn, cLabels);
        var policyRejected = SequenceScoring.SequenceLogProbs(model, rIn, rLabels);
        var refChosen = tensor(indexes.Select(i => (float)reference[i].Chosen).ToArray()).to(device);
        var refRejected = tensor(indexes.Select(i => (float)reference[i].Rejected).ToArray()).to(device);
        (_figures["margin"], _figures["accuracy"]) = Dpo.Rewards(policyChosen, policyRejected, refChosen, refRejected, config.Beta);
        return Dpo.Loss(policyChosen, policyRejected, refChosen, refRejected, config.Beta);
    }
}
