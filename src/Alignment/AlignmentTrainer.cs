using Pipeline.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Alignment;

/// <summary>
/// The SFT and DPO loops, nanoGPT-style and short: seeded batches, AdamW on the trainable parameters (LoRA adapters
/// only when LoRA is on), loss only on assistant tokens. DPO's reference log-probabilities are computed once with the
/// starting weights, which is the frozen reference model exactly, at the cost of one forward pass per pair.
/// </summary>
public static class AlignmentTrainer
{
    public static AlignmentReport Sft(Gpt model, IReadOnlyList<(List<int> Ids, List<bool> Trained)> examples, AlignmentConfig config, int padId,
        Action<(int Step, double Loss, double Margin, double Accuracy)>? onStep = null, CancellationToken ct = default)
    {
        var (kept, truncated, dropped) = Fit(examples, model.Config.Context + 1, config.TooLong);
        if (kept.Count == 0) throw new InvalidDataException("no SFT example fits the model's context");
        var optimizer = Prepare(model, config);
        var random = new Random((int)config.Seed);
        var steps = new List<(int, double, double, double)>();
        var device = model.parameters().First().device;
        var context = model.Config.Context;
        // Without packing every row holds one example, so both paths sample rows the same way.
        var rows = config.Packing
            ? SequenceScoring.PackRows(kept, context).Select(r => (IReadOnlyList<(List<int>, List<bool>)>)r.Select(i => kept[i]).ToList()).ToList()
            : kept.Select(e => (IReadOnlyList<(List<int>, List<bool>)>)[e]).ToList();
        for (var step = 1; step <= config.Steps && !ct.IsCancellationRequested; step++)
        {
            using var scope = NewDisposeScope();
            model.train();
            var batch = Enumerable.Range(0, config.BatchSize).Select(_ => rows[random.Next(rows.Count)]).ToList();
            Tensor input, labels;
            SequencePacking? packing = null;
            if (config.Packing) (input, labels, packing) = SequenceScoring.PackedBatch(batch, context, padId, device);
            else (input, labels) = SequenceScoring.Batch(batch.Select(r => r[0]).ToList(), context, padId, device);
            optimizer.zero_grad();
            var loss = model.Loss(input, labels, SequenceScoring.Ignore, packing);
            loss.backward();
            optimizer.step();
            steps.Add((step, loss.item<float>(), 0, 0));
            onStep?.Invoke(steps[^1]);
        }
        return new AlignmentReport(steps, truncated, dropped, kept.Count, rows.Count);
    }

    public static AlignmentReport Dpo(Gpt model, IReadOnlyList<(List<int> Prompt, List<int> Chosen, List<int> Rejected)> pairs, AlignmentConfig config, int padId,
        Action<(int Step, double Loss, double Margin, double Accuracy)>? onStep = null, CancellationToken ct = default)
    {
        var limit = model.Config.Context + 1;
        var sequences = pairs.Select(p => (Chosen: Join(p.Prompt, p.Chosen), Rejected: Join(p.Prompt, p.Rejected))).ToList();
        var kept = sequences.Where(s => config.TooLong == "truncate" || (s.Chosen.Ids.Count <= limit && s.Rejected.Ids.Count <= limit)).ToList();
        var dropped = sequences.Count - kept.Count;
        var truncated = kept.Count(s => s.Chosen.Ids.Count > limit || s.Rejected.Ids.Count > limit);
        if (kept.Count == 0) throw new InvalidDataException("no preference pair fits the model's context");
        var device = model.parameters().First().device;
        var optimizer = Prepare(model, config);

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
        for (var step = 1; step <= config.Steps && !ct.IsCancellationRequested; step++)
        {
            using var scope = NewDisposeScope();
            model.train();
            var indexes = Enumerable.Range(0, Math.Min(config.BatchSize, kept.Count)).Select(_ => random.Next(kept.Count)).ToList();
            var (cIn, cLabels) = SequenceScoring.Batch(indexes.Select(i => kept[i].Chosen).ToList(), model.Config.Context, padId, device);
            var (rIn, rLabels) = SequenceScoring.Batch(indexes.Select(i => kept[i].Rejected).ToList(), model.Config.Context, padId, device);
            var policyChosen = SequenceScoring.SequenceLogProbs(model, cIn, cLabels);
            var policyRejected = SequenceScoring.SequenceLogProbs(model, rIn, rLabels);
            var refChosen = tensor(indexes.Select(i => (float)reference[i].Chosen).ToArray()).to(device);
            var refRejected = tensor(indexes.Select(i => (float)reference[i].Rejected).ToArray()).to(device);
            optimizer.zero_grad();
            var loss = Pipeline.Alignment.Dpo.Loss(policyChosen, policyRejected, refChosen, refRejected, config.Beta);
            loss.backward();
            optimizer.step();
            var (margin, accuracy) = Pipeline.Alignment.Dpo.Rewards(policyChosen, policyRejected, refChosen, refRejected, config.Beta);
            steps.Add((step, loss.item<float>(), margin, accuracy));
            onStep?.Invoke(steps[^1]);
        }
        return new AlignmentReport(steps, truncated, dropped, kept.Count, kept.Count);
    }

    /// <summary>Sum of log-probabilities of a sequence's trained tokens under the model.</summary>
    public static Tensor Score(Gpt model, (List<int> Ids, List<bool> Trained) sequence, int padId, Device device)
    {
        var (input, labels) = SequenceScoring.Batch([sequence], model.Config.Context, padId, device);
        return SequenceScoring.SequenceLogProbs(model, input, labels)[0];
    }

    private static (List<int> Ids, List<bool> Trained) Join(List<int> prompt, List<int> reply) =>
        ([.. prompt, .. reply], [.. prompt.Select(_ => false), .. reply.Select(_ => true)]);

    private static (List<(List<int> Ids, List<bool> Trained)> Kept, int Truncated, int Dropped) Fit(
        IReadOnlyList<(List<int> Ids, List<bool> Trained)> examples, int limit, string tooLong)
    {
        var kept = new List<(List<int>, List<bool>)>();
        int truncated = 0, dropped = 0;
        foreach (var (ids, trained) in examples)
        {
            if (ids.Count <= limit) kept.Add((ids, trained));
            else if (tooLong == "drop") dropped++;
            else
            {
                truncated++;
                kept.Add((ids.Take(limit).ToList(), trained.Take(limit).ToList()));
            }
        }
        return (kept, truncated, dropped);
    }

    private static TorchSharp.Modules.AdamW Prepare(Gpt model, AlignmentConfig config)
    {
        manual_seed(config.Seed);
        if (config.LoraRank > 0) model.AddLora(config.LoraRank, config.LoraAlpha, config.LoraDropout, config.LoraTargets);
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        return optim.AdamW(trainable, lr: config.LearningRate, weight_decay: config.WeightDecay);
    }
}
