using System.CommandLine;
using Microsoft.Extensions.Logging;
using Pipeline.Alignment;
using Pipeline.Storage;
using Pipeline.Model;
using Spectre.Console;
using Pipeline.Runtime;

namespace Pipeline.Cli.Commands;

/// <summary>`pipeline align sft|dpo|reward|grpo|ppo`, `pipeline reward score` and `pipeline lora merge`.</summary>
public static class AlignCommands
{
    public static Command Align(Option<string> outOption)
    {
        var align = new Command("align", "Fine-tune a base checkpoint: supervised (sft), preference optimization (dpo), a reward model (reward) or RL (grpo, ppo), optionally with LoRA");
        foreach (var method in AlignmentConfig.Methods)
        {
            var baseOption = new Option<string>("--base") { Description = "Base checkpoint folder", Required = true };
            var data = new Option<string>("--data")
            {
                Description = method switch
                {
                    "sft" => "JSONL: {instruction, input?, output} or {messages}",
                    "grpo" or "ppo" => "Prompts: JSONL {prompt, answer?}, or a generation task file (.yaml: its prompts, its answers)",
                    _ => "JSONL: {prompt, chosen, rejected}",
                },
                Required = true,
            };
            var config = new Option<string?>("--config") { Description = "JSON AlignmentConfig (steps, batch size, learning rate, beta, LoRA rank/alpha/dropout/targets, too-long policy)" };
            var name = new Option<string>("--name") { Description = "Run name of the aligned model", DefaultValueFactory = _ => method };
            var lora = new Option<int>("--lora-rank") { Description = "LoRA rank (0 = full fine-tuning; overrides the config file)", DefaultValueFactory = _ => -1 };
            var tokenizerOption = new Option<string?>("--tokenizer") { Description = "Tokenizer folder (default: found by the base checkpoint's hash)" };
            var rewardModel = new Option<string?>("--reward") { Description = "grpo, ppo: the reward model's checkpoint (from `pipeline align reward`)" };
            var verifier = new Option<string?>("--verifier") { Description = "grpo, ppo: reward each completion by exact_match or char_f1 against the prompt's answer" };
            verifier.AcceptOnlyFromAmong("exact_match", "char_f1");
            var command = new Command(method, method switch
            {
                "sft" => "Supervised fine-tuning, loss on assistant tokens only",
                "dpo" => "Direct preference optimization against the frozen base",
                "grpo" => "Group-relative policy optimization: completions sampled per prompt, rewarded by a reward model (--reward) or a verifier (--verifier)",
                "ppo" => "PPO: a value head, GAE, clipped policy and value losses, a KL penalty in the reward; rewarded by a reward model (--reward) or a verifier (--verifier)",
                _ => "A reward model: the base with a scalar head on the last token, Bradley-Terry loss on {prompt, chosen, rejected}; held-out accuracy reported",
            })
            {
                baseOption, data, config, name, lora, tokenizerOption, outOption,
            };
            if (method is "grpo" or "ppo")
            {
                command.Options.Add(rewardModel);
                command.Options.Add(verifier);
            }
            command.SetAction((parse, ct) =>
            {
                var runName = SafeName.Check(parse.GetValue(name), "--name");
                var settings = parse.GetValue(config) is { } file ? Runtime.StrictConfig.FromJsonFile<AlignmentConfig>(file, "--config") : new AlignmentConfig();
                settings = settings with { Method = method };
                if (parse.GetValue(lora) >= 0) settings = settings with { LoraRank = parse.GetValue(lora) };
                if (parse.GetValue(rewardModel) is { } rm) settings = settings with { RewardModel = Path.GetFullPath(rm) };
                if (parse.GetValue(verifier) is { } v) settings = settings with { Verifier = v };
                var (_, _, tokenizer) = ModelCommands.Load(parse.GetValue(baseOption)!, parse.GetValue(tokenizerOption));
                using var logging = PipelineContext.Logging(quiet: false);
                var outDir = CliInputs.OutDir(parse.GetValue(outOption)!);
                var dataFile = parse.GetValue(data)!;
                if (method is "grpo" or "ppo" && dataFile.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase)) dataFile = TaskPrompts(dataFile, outDir, runName);
                var result = new AlignmentJob(logging.CreateLogger("align")).Run(parse.GetValue(baseOption)!, tokenizer, dataFile, settings,
                    new ShardStore(outDir).Resolve(Checkpoints.RunFolder(runName)), runName, ct);
                foreach (var error in result.DataErrors) AnsiConsole.MarkupLine($"[yellow]skipped[/] {Markup.Escape(error)}");
                var last = result.Report.Steps[^1];
                AnsiConsole.MarkupLine($"[green]align {method}[/]: loss {result.Report.Steps[0].Loss:F4} -> {last.Loss:F4}" +
                    (method is "dpo" or "reward" ? $", reward margin {last.Margin:F4}, accuracy {last.Accuracy:P0}" : "") +
                    (result.Report.HeldOut is { } held ? $"; held out {held.Pairs} pairs: accuracy {held.Accuracy:P1}, margin {held.Margin:F3}" : "") +
                    (result.Report.StepFigures.Count > 0 && result.Report.StepFigures[0].ContainsKey("reward")
                        ? $", mean reward {result.Report.StepFigures[0]["reward"]:F3} -> {result.Report.StepFigures[^1]["reward"]:F3}, KL {result.Report.StepFigures[^1]["kl"]:F4}" : "") +
                    $"; {result.Report.Truncated} truncated, {result.Report.Dropped} dropped; checkpoint {Markup.Escape(result.Checkpoint)}" +
                    (result.Adapter is null ? "" : $", adapter {Markup.Escape(result.Adapter)}"));
                return Task.FromResult(0);
            });
            align.Subcommands.Add(command);
        }
        return align;
    }

    /// <summary>
    /// A generation task's examples as GRPO prompts: each example's prompt as the task renders it ({field} filled from
    /// the example) and its answer, written under the output folder (alignment/&lt;run&gt;-prompts.jsonl), so the task's
    /// own scoring rule can be the reward (--verifier).
    /// </summary>
    private static string TaskPrompts(string taskFile, string outDir, string runName)
    {
        var lines = TaskPrompts(Evaluator.Tasks.TaskLoader.Load(taskFile), taskFile).Select(p => System.Text.Json.JsonSerializer.Serialize(new { prompt = p.Prompt, answer = p.Answer }));
        var path = Path.Combine(outDir, "alignment", $"{runName}-prompts.jsonl");
        AtomicWrite.Text(path, string.Join('\n', lines) + "\n");
        return path;
    }

    /// <summary>A generation task's examples as (prompt, answer): the prompt as the task renders it, {field} filled from the example.</summary>
    public static List<(string Prompt, string Answer)> TaskPrompts(Evaluator.Tasks.EvalTask task, string source)
    {
        if (task.Type != "generation") throw new ArgumentException($"--data '{source}': task type '{task.Type}' is not generation (GRPO needs prompts and answers)");
        return Evaluator.Tasks.TaskLoader.Examples(task).Select(example => (
            System.Text.RegularExpressions.Regex.Replace(task.Prompt, @"\{(\w+)\}", m => example[m.Groups[1].Value]?.ToString() ?? m.Value),
            example[task.Answer]?.ToString() ?? throw new InvalidDataException($"--data '{source}': an example has no '{task.Answer}'"))).ToList();
    }

    public static Command Reward()
    {
        var model = new Option<string>("--model") { Description = "Reward model checkpoint folder (from `pipeline align reward`)", Required = true };
        var data = new Option<string>("--data") { Description = "JSONL or Parquet: {prompt, response} or {prompt, chosen, rejected}", Required = true };
        var output = new Option<string>("--out") { Description = "JSONL written: {line, reward} or {line, chosen, rejected, margin} per record", Required = true };
        var tokenizerOption = new Option<string?>("--tokenizer") { Description = "Tokenizer folder (default: found by the checkpoint's hash)" };
        var score = new Command("score", "Score responses with a reward model") { model, data, output, tokenizerOption };
        score.SetAction(parse =>
        {
            var (rewardModel, _, tokenizer) = ModelCommands.Load(parse.GetValue(model)!, parse.GetValue(tokenizerOption));
            if (rewardModel.ScoreHead is null)
                throw new ArgumentException($"--model '{parse.GetValue(model)}' is a language model, not a reward model (train one with `pipeline align reward`)");
            var errors = new List<string>();
            var records = AlignmentData.ReadScoring(parse.GetValue(data)!, errors);
            foreach (var error in errors) AnsiConsole.MarkupLine($"[yellow]skipped[/] {Markup.Escape(error)}");
            if (records.Count == 0) throw new InvalidDataException($"--data '{parse.GetValue(data)}' holds no record to score");
            var summary = RewardScoring.Score(rewardModel, tokenizer, records, Path.GetFullPath(parse.GetValue(output)!));
            AnsiConsole.MarkupLine($"[green]reward score[/]: {summary.Records} records, {summary.Truncated} truncated" +
                                   (summary.Accuracy is { } accuracy ? $", chosen preferred in {accuracy:P1} of pairs" : "") + $" -> {Markup.Escape(parse.GetValue(output)!)}");
            return 0;
        });
        return new Command("reward", "Reward model tools") { score };
    }

    public static Command Lora(Option<string> outOption)
    {
        var adapter = new Option<string>("--adapter") { Description = "Adapter folder written by `pipeline align --lora-rank N`", Required = true };
        var name = new Option<string>("--name") { Description = "Run name of the merged model", DefaultValueFactory = _ => "merged" };
        var merge = new Command("merge", "Fold a LoRA adapter into its base checkpoint and write a full checkpoint under --out/checkpoints/<name>") { adapter, name, outOption };
        merge.SetAction(parse =>
        {
            var runFolder = Checkpoints.RunFolder(SafeName.Check(parse.GetValue(name), "--name"));
            var folder = AlignmentJob.Merge(parse.GetValue(adapter)!, Path.Combine(CliInputs.OutDir(parse.GetValue(outOption)!), runFolder));
            AnsiConsole.MarkupLine($"[green]lora merge[/]: {Markup.Escape(folder)}");
            return 0;
        });
        return new Command("lora", "LoRA adapter tools") { merge };
    }
}
