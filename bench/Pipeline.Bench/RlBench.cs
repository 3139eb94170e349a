using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Alignment;
using Pipeline.Bpe;
using Pipeline.Model;
using Pipeline.Runtime;
using static TorchSharp.torch;

namespace Pipeline.Bench;

/// <summary>
/// #29's side-by-side: from one SFT checkpoint (LoRA SFT of CHECKPOINT on the shipped chat samples), a reward model
/// on fluent-against-shuffled sentence pairs of the held-out documents (as `bench reward`), then DPO on those pairs,
/// and GRPO and PPO against the reward model on the continuation task's prompts (32 for training). Each model is
/// judged on the 8 held-out prompts: the reward model's mean score of 4 sampled completions each, their KL to the SFT
/// model (mean over completions of Σ log π − log π_sft, sampled from π), and the task's char_f1 of the greedy one.
/// Arguments: CHECKPOINT TEXTS TASK.yaml OUT [rl steps] [rl learning rate].
/// </summary>
public static class RlBench
{
    public static Task RunAsync(string[] args)
    {
        if (args.Length < 4) throw new ArgumentException("usage: rl CHECKPOINT TEXTS TASK.yaml OUT [rl steps] [rl learning rate]");
        var outFolder = Directory.CreateDirectory(args[3]).FullName;
        var steps = args.Length > 4 ? int.Parse(args[4]) : 100;
        var rate = args.Length > 5 ? double.Parse(args[5], System.Globalization.CultureInfo.InvariantCulture) : 1e-4;
        var (_, _, tokenizer) = Cli.Commands.ModelCommands.Load(args[0], null);
        var job = new AlignmentJob(NullLogger.Instance);
        string Train(string name, string from, string data, AlignmentConfig config)
        {
            var clock = Stopwatch.StartNew();
            var result = job.Run(from, tokenizer, data, config, Path.Combine(outFolder, name), name);
            var figures = result.Report.StepFigures;
            Console.WriteLine($"{name}: {clock.Elapsed.TotalSeconds:F0} s" + (figures.Count > 0 && figures[0].ContainsKey("generate_seconds")
                ? $", {clock.Elapsed.TotalSeconds / config.Steps:F2} s/step, {figures.Sum(f => f["generate_seconds"]) / clock.Elapsed.TotalSeconds:P0} generating" : "")
                + (result.Report.HeldOut is { } held ? $", held-out accuracy {held.Accuracy:P1}" : "")
                + (figures.Count >= 10 && figures[0].ContainsKey("kl")
                    ? $", training KL first/last 10 steps {figures.Take(10).Average(f => f["kl"]):F2} / {figures.TakeLast(10).Average(f => f["kl"]):F2}"
                      + (figures[0].TryGetValue("kl_coefficient", out var beta) ? $", KL coefficient {beta:F3} -> {figures[^1]["kl_coefficient"]:F3}" : "") : ""));
            return result.Checkpoint;
        }
        var repository = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(args[2])!, ".."));
        var sft = Train("sft", args[0], Path.Combine(repository, "samples", "alignment", "sft-ja.jsonl"),
            new AlignmentConfig { Method = "sft", Steps = 100, LoraRank = 8, LearningRate = 1e-3 });

        var (pairs, _) = RewardBench.Pairs(GgufBench.HeldOutTexts(args[1]));
        var pairsFile = Path.Combine(outFolder, "pairs.jsonl");
        File.WriteAllLines(pairsFile, pairs.Select(p => JsonSerializer.Serialize(p)));
        var rewardModel = Train("rm", sft, pairsFile, new AlignmentConfig { Method = "reward", Steps = 300, BatchSize = 16, LearningRate = 3e-4, WarmupSteps = 30 });

        var promptsFile = Path.Combine(outFolder, "prompts.jsonl");
        var (training, heldOut) = GrpoBench.SplitTaskPrompts(args[2], promptsFile);

        var models = new List<(string Name, string Checkpoint)> { ("SFT (start)", sft) };
        // DPO at a tenth of the RL rate: at the same rate it left the SFT model behind (KL in the hundreds of nats).
        models.Add(("DPO", Train("dpo", sft, pairsFile, new AlignmentConfig { Method = "dpo", Steps = steps, BatchSize = 8, LearningRate = rate / 10 })));
        models.Add(("GRPO", Train("grpo", sft, promptsFile, new AlignmentConfig
            { Method = "grpo", Steps = steps, BatchSize = 4, Generations = 4, MaxNewTokens = 32, LearningRate = rate, RewardModel = rewardModel })));
        models.Add(("PPO", Train("ppo", sft, promptsFile, new AlignmentConfig
            { Method = "ppo", Steps = steps, BatchSize = 16, PpoEpochs = 4, MaxNewTokens = 32, LearningRate = rate, RewardModel = rewardModel })));
        // PPO steering β towards a KL per completion of 3 nats: TRL's horizon (10,000 completions) would not move β in
        // 25 batches of 16, so horizons of 32 and 8 completions (β changes by at most 10 % and 40 % a batch).
        foreach (var horizon in new[] { 32, 8 })
            models.Add(($"PPO, KL target 3, horizon {horizon}", Train($"ppo-kl-target-{horizon}", sft, promptsFile, new AlignmentConfig
                { Method = "ppo", Steps = steps, BatchSize = 16, PpoEpochs = 4, MaxNewTokens = 32, LearningRate = rate, RewardModel = rewardModel, KlTarget = 3, KlHorizon = horizon })));

        var template = new ChatTemplate(tokenizer);
        var pad = tokenizer.SpecialIds[SpecialTokens.Pad];
        var stop = new HashSet<int> { tokenizer.SpecialIds[SpecialTokens.EndOfTurn], tokenizer.EndOfText };
        var (rm, _) = Checkpoints.Load(rewardModel, CPU);
        var (start, _) = Checkpoints.Load(sft, CPU);
        var prompts = heldOut.Select(h => template.Prompt([new ChatMessage("user", h.Prompt)])).ToList();
        Console.WriteLine($"{training} training prompts, {heldOut.Count} held out; RL: {steps} steps, learning rate {rate}");
        Console.WriteLine("| model | reward (held-out prompts, 4 samples each) | KL to SFT | task char_f1 (greedy) | completion tokens |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var (name, checkpoint) in models)
        {
            var (model, _) = Checkpoints.Load(checkpoint, CPU);
            var repeated = prompts.SelectMany(p => Enumerable.Repeat((IReadOnlyList<int>)p, 4)).ToList();
            var sampled = TextGenerator.GenerateBatch(model, repeated, new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MaxNewTokens = 32, Seed = 11 }, stop);
            using var _ = no_grad();
            var sequences = repeated.Select((p, i) => p.Concat(sampled[i]).ToList()).ToList();
            var reward = AlignmentTrainer.Rewards(rm, sequences, pad, CPU).mean().item<float>();
            var batch = repeated.Select((p, i) => (Ids: sequences[i], Trained: p.Select(_ => false).Concat(sampled[i].Select(_ => true)).ToList())).ToList();
            var (input, labels) = SequenceScoring.Batch(batch, model.Config.Context, pad, CPU);
            var kl = (LogProbs.OfLabels(model, input, labels) - LogProbs.OfLabels(start, input, labels)).mean().item<double>();
            var greedy = TextGenerator.GenerateBatch(model, prompts.Select(p => (IReadOnlyList<int>)p).ToList(), new SamplingOptions { Temperature = 0, MaxNewTokens = 32 }, stop);
            var f1 = greedy.Select((g, i) => Scorers.CharF1(tokenizer.Decode(g.TakeWhile(t => !stop.Contains(t))), heldOut[i].Answer)).Average();
            Console.WriteLine($"| {name} | {reward:F3} | {kl:F3} | {f1:F3} | {sampled.Average(s => s.Count):F1} |");
        }
        return Task.CompletedTask;
    }
}
