using System.CommandLine;
using Microsoft.Extensions.Logging;
using Pipeline.Alignment;
using Pipeline.Storage;
using Pipeline.Model;
using Spectre.Console;
using Pipeline.Runtime;

namespace Pipeline.Cli.Commands;

/// <summary>`pipeline align sft|dpo` and `pipeline lora merge`.</summary>
public static class AlignCommands
{
    public static Command Align(Option<string> outOption)
    {
        var align = new Command("align", "Fine-tune a base checkpoint: supervised (sft) or preference optimization (dpo), optionally with LoRA");
        foreach (var method in new[] { "sft", "dpo" })
        {
            var baseOption = new Option<string>("--base") { Description = "Base checkpoint folder", Required = true };
            var data = new Option<string>("--data") { Description = method == "sft" ? "JSONL: {instruction, input?, output} or {messages}" : "JSONL: {prompt, chosen, rejected}", Required = true };
            var config = new Option<string?>("--config") { Description = "JSON AlignmentConfig (steps, batch size, learning rate, beta, LoRA rank/alpha/dropout/targets, too-long policy)" };
            var name = new Option<string>("--name") { Description = "Run name of the aligned model", DefaultValueFactory = _ => method };
            var lora = new Option<int>("--lora-rank") { Description = "LoRA rank (0 = full fine-tuning; overrides the config file)", DefaultValueFactory = _ => -1 };
            var tokenizerOption = new Option<string?>("--tokenizer") { Description = "Tokenizer folder (default: found by the base checkpoint's hash)" };
            var command = new Command(method, method == "sft" ? "Supervised fine-tuning, loss on assistant tokens only" : "Direct preference optimization against the frozen base")
            {
                baseOption, data, config, name, lora, tokenizerOption, outOption,
            };
            command.SetAction((parse, ct) =>
            {
                var runName = SafeName.Check(parse.GetValue(name), "--name");
                var settings = parse.GetValue(config) is { } file ? Runtime.StrictConfig.FromJsonFile<AlignmentConfig>(file, "--config") : new AlignmentConfig();
                settings = settings with { Method = method };
                if (parse.GetValue(lora) >= 0) settings = settings with { LoraRank = parse.GetValue(lora) };
                var (_, _, tokenizer) = ModelCommands.Load(parse.GetValue(baseOption)!, parse.GetValue(tokenizerOption));
                using var logging = PipelineContext.Logging(quiet: false);
                var outDir = CliInputs.OutDir(parse.GetValue(outOption)!);
                var result = new AlignmentJob(logging.CreateLogger("align")).Run(parse.GetValue(baseOption)!, tokenizer, parse.GetValue(data)!, settings,
                    new ShardStore(outDir).Resolve(Checkpoints.RunFolder(runName)), runName, ct);
                foreach (var error in result.DataErrors) AnsiConsole.MarkupLine($"[yellow]skipped[/] {Markup.Escape(error)}");
                var last = result.Report.Steps[^1];
                AnsiConsole.MarkupLine($"[green]align {method}[/]: loss {result.Report.Steps[0].Loss:F4} -> {last.Loss:F4}" +
                    (method == "dpo" ? $", reward margin {last.Margin:F4}, accuracy {last.Accuracy:P0}" : "") +
                    $"; {result.Report.Truncated} truncated, {result.Report.Dropped} dropped; checkpoint {Markup.Escape(result.Checkpoint)}" +
                    (result.Adapter is null ? "" : $", adapter {Markup.Escape(result.Adapter)}"));
                return Task.FromResult(0);
            });
            align.Subcommands.Add(command);
        }
        return align;
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
