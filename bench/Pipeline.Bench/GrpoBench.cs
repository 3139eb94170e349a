using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Alignment;
using Pipeline.Bpe;
using Pipeline.Model;
using Pipeline.Runtime;
using static TorchSharp.torch;

namespace Pipeline.Bench;

/// <summary>
/// #29's GRPO figure: a generation task's prompts split 80/20; GRPO (`pipeline align grpo`'s job) on the first part
/// with the task's verifier as the reward; the mean reward of the held-out prompts' completions (4 samples each at
/// temperature 1, and greedy) before and after, with the KL to the start and the time per step and share generating.
/// Arguments: CHECKPOINT TASK.yaml OUT [steps] [learning rate] [verifier].
/// </summary>
public static class GrpoBench
{
    public static Task RunAsync(string[] args)
    {
        if (args.Length < 3) throw new ArgumentException("usage: grpo CHECKPOINT TASK.yaml OUT [steps] [learning rate] [verifier]");
        var outFolder = Directory.CreateDirectory(args[2]).FullName;
        var steps = args.Length > 3 ? int.Parse(args[3]) : 100;
        var rate = args.Length > 4 ? double.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture) : 1e-5;
        var verifier = args.Length > 5 ? args[5] : "char_f1";
        var trainFile = Path.Combine(outFolder, "train.jsonl");
        var (training, heldOut) = SplitTaskPrompts(args[1], trainFile);
        var (start, _, tokenizer) = Cli.Commands.ModelCommands.Load(args[0], null);
        var template = new ChatTemplate(tokenizer);
        var stop = new HashSet<int> { tokenizer.SpecialIds[SpecialTokens.EndOfTurn], tokenizer.EndOfText };
        Func<string, string, double> score = verifier == "exact_match" ? Scorers.ExactMatch : Scorers.CharF1;
        var config = new AlignmentConfig { Method = "grpo", Steps = steps, BatchSize = 4, Generations = 4, MaxNewTokens = 32, LearningRate = rate, Verifier = verifier, LogEvery = 10 };
        (double Sampled, double Greedy) Mean(Gpt model)
        {
            var prompts = heldOut.Select(h => (IReadOnlyList<int>)template.Prompt([new ChatMessage("user", h.Prompt)])).ToList();
            double Of(List<List<int>> outputs, int per) => outputs.Select((o, i) => score(tokenizer.Decode(o.TakeWhile(t => !stop.Contains(t))), heldOut[i / per].Answer)).Average();
            var sampled = TextGenerator.GenerateBatch(model, prompts.SelectMany(p => Enumerable.Repeat(p, 4)).ToList(),
                new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MaxNewTokens = 32, Seed = 7 }, stop);
            var greedy = TextGenerator.GenerateBatch(model, prompts, new SamplingOptions { Temperature = 0, MaxNewTokens = 32 }, stop);
            return (Of(sampled, 4), Of(greedy, 1));
        }
        var before = Mean(start);
        var clock = Stopwatch.StartNew();
        var result = new AlignmentJob(NullLogger.Instance).Run(args[0], tokenizer, trainFile, config, Path.Combine(outFolder, "grpo"), "grpo");
        var seconds = clock.Elapsed.TotalSeconds;
        var (policy, _) = Checkpoints.Load(result.Checkpoint, CPU);
        var after = Mean(policy);
        var figures = result.Report.StepFigures;
        Console.WriteLine($"{training} training prompts, {heldOut.Count} held out; {steps} steps of 4 prompts x 4 completions (up to 32 tokens), learning rate {rate}, reward {verifier}");
        Console.WriteLine("| | held-out reward, sampled (T 1) | greedy | training reward (first / last 10 steps) | KL to start (last step) | s/step | generating |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        Console.WriteLine($"| start | {before.Sampled:F3} | {before.Greedy:F3} | | | | |");
        Console.WriteLine($"| after GRPO | {after.Sampled:F3} | {after.Greedy:F3} | {figures.Take(10).Average(f => f["reward"]):F3} / {figures.TakeLast(10).Average(f => f["reward"]):F3} | " +
                          $"{figures[^1]["kl"]:F4} | {seconds / steps:F2} | {figures.Sum(f => f["generate_seconds"]) / seconds:P0} |");
        return Task.CompletedTask;
    }

    /// <summary>
    /// A generation task's examples as RL prompts: every fifth held out (returned), the others written to
    /// <paramref name="trainFile"/> as {prompt, answer} lines, as `pipeline align grpo|ppo --data` reads them.
    /// </summary>
    internal static (int Training, List<(string Prompt, string Answer)> HeldOut) SplitTaskPrompts(string taskFile, string trainFile)
    {
        var examples = Cli.Commands.AlignCommands.TaskPrompts(Evaluator.Tasks.TaskLoader.Load(taskFile), taskFile);
        var training = examples.Where((_, i) => i % 5 != 4).ToList();
        File.WriteAllLines(trainFile, training.Select(e => System.Text.Json.JsonSerializer.Serialize(new { prompt = e.Prompt, answer = e.Answer })));
        return (training.Count, examples.Where((_, i) => i % 5 == 4).ToList());
    }
}
