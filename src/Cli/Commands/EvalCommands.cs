using System.CommandLine;
using Microsoft.Extensions.Logging;
using Pipeline.Evaluator;
using Pipeline.Evaluator.Tasks;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;
using Spectre.Console;

namespace Pipeline.Cli.Commands;

/// <summary>`pipeline eval`: score checkpoints on task files by hand; `pipeline eval report`: tables and plots.</summary>
public static class EvalCommands
{
    public static Command Create(Option<string> outOption)
    {
        var checkpoints = new Option<string[]>("--checkpoint") { Description = "Checkpoint folder(s) under --out (…/checkpoints/<run>/step-N)", AllowMultipleArgumentsPerToken = true, Required = true };
        var tasks = new Option<string[]>("--task") { Description = "Task file(s) (YAML/JSON; see tasks/ and docs/evaluator.md)", AllowMultipleArgumentsPerToken = true, Required = true };
        var force = new Option<bool>("--force") { Description = "Score again what the ledger already has" };
        var eval = new Command("eval", "Score checkpoints on tasks; results go to the ledger in --out (once per checkpoint, task and version)") { checkpoints, tasks, force, outOption };
        eval.SetAction(async (parse, ct) =>
        {
            // Every task file is read before any checkpoint is loaded: a bad one is an `error:` line naming it at once.
            foreach (var file in parse.GetValue(tasks)!) Pipeline.Evaluator.Tasks.TaskLoader.Load(file);
            var outDir = CliInputs.OutDir(parse.GetValue(outOption)!);
            var context = PipelineContext.Open(outDir);
            var store = context.Store;
            using var logging = PipelineContext.Logging(quiet: true);
            var evaluator = new CheckpointEvaluator(store, context.Ledger, new EvaluatorOptions(), logging.CreateLogger<CheckpointEvaluator>());
            var table = new Table().AddColumns("checkpoint", "task", "metric", "value");
            var failed = 0;
            foreach (var checkpoint in parse.GetValue(checkpoints)!)
            {
                var uri = Path.IsPathRooted(checkpoint) || File.Exists(Path.Combine(checkpoint, "checkpoint.json")) ? store.RelativeUri(Path.GetFullPath(checkpoint)) : checkpoint;
                foreach (var outcome in await evaluator.EvaluateAsync(uri, null, parse.GetValue(tasks)!, includeValidation: false, parse.GetValue(force), ct))
                {
                    if (outcome.Error is not null)
                    {
                        failed++;
                        table.AddRow(Markup.Escape(uri), Markup.Escape(outcome.Task), "[red]error[/]", Markup.Escape(outcome.Error));
                        continue;
                    }
                    foreach (var (metric, value) in outcome.Metrics) table.AddRow(Markup.Escape(uri), outcome.Task, metric, value.ToString("G5"));
                }
            }
            AnsiConsole.Write(table);
            if (failed == 0) return 0;
            Console.Error.WriteLine($"error: {failed} evaluation(s) failed; the table above names each checkpoint, task and reason");
            return 2;
        });
        var report = new Command("report", "Write reports/eval.md with tables and PNG plots of loss and task metrics against the step") { outOption };
        report.SetAction(parse =>
        {
            // Every task file is read before any checkpoint is loaded: a bad one is an `error:` line naming it at once.
            foreach (var file in parse.GetValue(tasks)!) Pipeline.Evaluator.Tasks.TaskLoader.Load(file);
            var outDir = CliInputs.OutDir(parse.GetValue(outOption)!);
            var context = PipelineContext.Open(outDir);
            var path = EvalReport.Write(context.Ledger, context.Store.Resolve("reports"));
            AnsiConsole.MarkupLine($"[green]eval report[/]: {Markup.Escape(path)}");
            return 0;
        });
        eval.Subcommands.Add(report);
        return eval;
    }
}
