using System.Text;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Evaluator;

/// <summary>
/// `pipeline eval report`: a Markdown report of every run's training curve and evaluation results, with PNG plots
/// (ScottPlot) of loss and of each task metric against the step.
/// </summary>
public static class EvalReport
{
    /// <summary>
    /// The metrics of some evaluations as "value ± standard error" (the stderr rows folded into their metric), the
    /// way lm-eval prints them; "examples" counts are kept as they are.
    /// </summary>
    public static IEnumerable<(EvalRow Row, string Value)> WithStderr(IEnumerable<EvalRow> evals, string format = "F4")
    {
        var rows = evals.ToList();
        var stderr = rows.Where(e => e.Metric.EndsWith(Tasks.TaskRunner.StderrSuffix, StringComparison.Ordinal))
            .ToDictionary(e => (e.Checkpoint, e.Task, e.Metric[..^Tasks.TaskRunner.StderrSuffix.Length]), e => e.Value);
        foreach (var e in rows.Where(e => !e.Metric.EndsWith(Tasks.TaskRunner.StderrSuffix, StringComparison.Ordinal)))
            yield return (e, stderr.TryGetValue((e.Checkpoint, e.Task, e.Metric), out var se) ? $"{e.Value.ToString(format)} ± {se.ToString(format)}" : e.Value.ToString(format));
    }

    public static string Write(Ledger ledger, string folder)
    {
        Directory.CreateDirectory(folder);
        var evals = ledger.Evaluations.Evals();
        var runs = evals.Select(e => e.RunName).Distinct().Order(StringComparer.Ordinal).ToList();
        var md = new StringBuilder("# Evaluation report\n\n");
        foreach (var run in runs)
        {
            md.Append($"## {run}\n\n");
            var train = ledger.Evaluations.Metrics(run, "train").Where(m => m.Name == "loss").OrderBy(m => m.Step).ToList();
            var validation = evals.Where(e => e.RunName == run && e.Metric == "loss").OrderBy(e => e.Step).ToList();
            if (train.Count > 0 || validation.Count > 0)
            {
                var png = $"{Safe(run)}-loss.png";
                Plot(Path.Combine(folder, png), "loss", [("train loss", train.Select(m => ((double)m.Step, m.Value)).ToList()),
                    ("validation loss", validation.Select(e => ((double)e.Step, e.Value)).ToList())]);
                md.Append($"![loss]({png})\n\n");
            }
            md.Append("| step | task | version | metric | value |\n|---:|---|---|---|---:|\n");
            foreach (var (e, value) in WithStderr(evals.Where(e => e.RunName == run).OrderBy(e => e.Step).ThenBy(e => e.Task).ThenBy(e => e.Metric), "G5"))
                md.Append($"| {e.Step} | {e.Task} | {e.TaskVersion} | {e.Metric} | {value} |\n");
            md.Append('\n');
        }
        foreach (var group in evals.Where(e => EvalMetrics.IsScore(e.Metric)).GroupBy(e => (e.Task, e.Metric)).OrderBy(g => g.Key.Task).ThenBy(g => g.Key.Metric))
        {
            var png = $"{Safe(group.Key.Task)}-{Safe(group.Key.Metric)}.png";
            Plot(Path.Combine(folder, png), $"{group.Key.Task}: {group.Key.Metric}",
                group.GroupBy(e => e.RunName).Select(r => (r.Key, r.OrderBy(e => e.Step).Select(e => ((double)e.Step, e.Value)).ToList())).ToList());
            md.Append($"### {group.Key.Task}: {group.Key.Metric}\n\n![{group.Key.Metric}]({png})\n\n");
        }
        if (runs.Count == 0) md.Append("No evaluations recorded yet.\n");
        var path = Path.Combine(folder, "eval.md");
        AtomicWrite.Text(path, md.ToString());
        return path;
    }

    /// <summary>A line plot of some series against the step, its legend to the right of the data so it covers no point.</summary>
    public static void Plot(string path, string title, IReadOnlyList<(string Label, List<(double X, double Y)> Points)> series)
    {
        var plot = new ScottPlot.Plot();
        foreach (var (label, points) in series.Where(s => s.Points.Count > 0))
        {
            var scatter = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray());
            scatter.LegendText = label;
        }
        plot.Title(title);
        plot.XLabel("step");
        plot.ShowLegend(ScottPlot.Edge.Right);
        plot.SavePng(path, 900, 450);
    }

    public static string Safe(string name) => string.Concat(name.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '_'));
}
