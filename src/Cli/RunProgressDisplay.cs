using Pipeline.Hosting;
using Spectre.Console;

namespace Pipeline.Cli;

/// <summary>
/// Live per-stage progress of `pipeline run` on a terminal: shards and rows per stage from the ledger, the current
/// phase and the last training step, redrawn twice a second. Off a terminal the structured log lines say the same.
/// </summary>
public sealed class RunProgressDisplay(RunLedger ledger, string runId, string trainingRun)
{
    private volatile string _phase = "starting";

    public void SetPhase(string phase) => _phase = phase;

    public async Task RunAsync(Func<Task> work)
    {
        if (!Commands.StageProgress.Interactive)
        {
            await work();
            return;
        }
        await AnsiConsole.Live(Render()).AutoClear(false).StartAsync(async context =>
        {
            var task = work();
            while (!task.IsCompleted)
            {
                context.UpdateTarget(Render());
                await Task.WhenAny(task, Task.Delay(500));
            }
            context.UpdateTarget(Render());
            await task;
        });
    }

    private Table Render()
    {
        var table = new Table().Title($"run [bold]{Markup.Escape(runId)}[/]: {Markup.Escape(_phase)}").AddColumns("stage", "shards", "rows", "MB");
        var run = ledger.Runs().FirstOrDefault(r => r.RunId == runId);
        foreach (var stage in run?.Stages ?? [])
            table.AddRow(stage.Stage, stage.Shards.ToString("N0"), stage.Rows.ToString("N0"), (stage.Bytes / 1e6).ToString("F1"));
        var losses = ledger.Metrics(trainingRun, "train").Where(m => m.Name == "loss").ToList();
        if (losses.Count > 0) table.AddRow("train", $"step {losses[^1].Step:N0}", $"loss {losses[^1].Value:F3}", "");
        var evals = ledger.Evals(trainingRun).Where(e => e.Metric == "loss").ToList();
        if (evals.Count > 0) table.AddRow("evaluate", $"step {evals[^1].Step:N0}", $"val loss {evals[^1].Value:F3}", "");
        return table;
    }
}
