using System.Globalization;
using System.Text;
using System.Text.Json;
using Pipeline.Evaluator;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Cli;

/// <summary>
/// The ablation's report (reports/ablation.md and .json): per arm its kept documents, training tokens and epochs at the
/// shared budget; per arm and task metric the score ± its standard error; per pair of arms the paired difference with
/// a 95 % confidence interval; the loss curves of every arm on one plot. Intervals and errors are bootstrap ones
/// (1,000 resamples, fixed seed) over the examples a task scores, and over the seeds when there are several: both
/// arms are resampled alike, which is what makes the comparison paired. A perplexity task's metric is bits per byte
/// over the resampled documents (their summed loss over their summed bytes), not a mean of per-document figures.
/// </summary>
public static class AblationReport
{
    private const int Resamples = 1000;

    public static (string Path, AblationSummary Summary) Write(string folder, string name, IReadOnlyList<AblationArmSummary> arms, IReadOnlyList<AblationScore> scores, long budget, string heldOutTask)
    {
        Directory.CreateDirectory(folder);
        var seeds = scores.Select(s => s.Seed).Distinct().Order().ToList();
        var metrics = scores[0].Samples.SelectMany(t => Metrics(t.Value).Select(m => (Task: t.Key, Metric: m))).ToList();
        double[] Values(string arm, string task, string metric, IReadOnlyList<int> examples, IReadOnlyList<int> seedPicks) => seedPicks
            .Select(i => scores.Single(s => s.Arm == arm && s.Seed == seeds[i]).Samples[task]).Select(samples => Metric(samples, metric, examples)).ToArray();
        int Examples(string task) => scores[0].Samples[task].First().Value.Count;

        var cells = new List<AblationCell>();
        var differences = new List<AblationDifference>();
        foreach (var (task, metric) in metrics)
        {
            var n = Examples(task);
            var all = Enumerable.Range(0, n).ToList();
            var allSeeds = Enumerable.Range(0, seeds.Count).ToList();
            // The same resamples for every arm: examples (and seeds) drawn once per resample.
            var random = new Random(1234);
            var draws = Enumerable.Range(0, Resamples).Select(_ => (Examples: Enumerable.Range(0, n).Select(_ => random.Next(n)).ToList(),
                Seeds: seeds.Count == 1 ? allSeeds : Enumerable.Range(0, seeds.Count).Select(_ => random.Next(seeds.Count)).ToList())).ToList();
            var boot = arms.ToDictionary(a => a.Name, a => draws.Select(d => Values(a.Name, task, metric, d.Examples, d.Seeds).Average()).ToArray());
            foreach (var arm in arms)
                cells.Add(new AblationCell(arm.Name, task, metric, Values(arm.Name, task, metric, all, allSeeds).Average(), StandardDeviation(boot[arm.Name])));
            foreach (var (a, b) in arms.SelectMany((a, i) => arms.Skip(i + 1).Select(b => (a, b))))
            {
                var diffs = boot[b.Name].Zip(boot[a.Name], (x, y) => x - y).Order().ToArray();
                var point = cells.Single(c => c.Arm == b.Name && c.Task == task && c.Metric == metric).Value - cells.Single(c => c.Arm == a.Name && c.Task == task && c.Metric == metric).Value;
                differences.Add(new AblationDifference(task, metric, a.Name, b.Name, point, diffs[(int)(0.025 * (Resamples - 1))], diffs[(int)Math.Ceiling(0.975 * (Resamples - 1))]));
            }
        }

        var md = new StringBuilder($"# Ablation {name}\n\n");
        md.Append($"{arms.Count} arms, {seeds.Count} seed(s) each; every model trained on {budget:N0} tokens (the same model, schedule and tokenizer). ")
            .Append($"`{heldOutTask}` is the validation text no arm trains on: one raw page in 20, by URL hash, extracted but not filtered.\n\n");
        md.Append("| arm | settings | documents kept | training tokens | epochs at the budget |\n|---|---|---:|---:|---:|\n");
        foreach (var arm in arms)
            md.Append($"| {arm.Name} | {(arm.Settings.Count == 0 ? "defaults" : string.Join(", ", arm.Settings.Select(kv => $"{kv.Key}={Path.GetFileName(kv.Value)}")))} | {arm.Documents:N0} | {arm.TrainTokens:N0} | {arm.Epochs:F2} |\n");
        md.Append("\nScores (mean over seeds ± bootstrap standard error; bits per byte: lower is better):\n\n| arm | ")
            .Append(string.Join(" | ", metrics.Select(m => $"{m.Task}<br>{m.Metric}"))).Append(" |\n|---|").Append(string.Concat(metrics.Select(_ => "---:|"))).Append('\n');
        foreach (var arm in arms)
            md.Append($"| {arm.Name} | ").Append(string.Join(" | ", metrics.Select(m => cells.Single(c => c.Arm == arm.Name && c.Task == m.Task && c.Metric == m.Metric))
                .Select(c => $"{F(c.Value)} ± {F(c.Stderr)}"))).Append(" |\n");
        md.Append("\nPaired differences (arm − baseline) with 95 % confidence intervals (paired bootstrap over examples" + (seeds.Count > 1 ? " and seeds" : "") + "); * where the interval excludes 0:\n\n")
            .Append("| task | metric | arm − baseline | difference | 95 % interval |\n|---|---|---|---:|---|\n");
        foreach (var d in differences)
            md.Append($"| {d.Task} | {d.Metric} | {d.Arm} − {d.Baseline} | {F(d.Value)}{(d.Significant ? " *" : "")} | [{F(d.Low)}, {F(d.High)}] |\n");
        var png = $"ablation-{EvalReport.Safe(name)}-loss.png";
        EvalReport.Plot(Path.Combine(folder, png), $"{name}: training loss", scores.OrderBy(s => s.Arm, StringComparer.Ordinal).ThenBy(s => s.Seed)
            .Select(s => ($"{s.Arm} (seed {s.Seed})", s.Losses.Select(l => ((double)l.Step, l.Loss)).ToList())).ToList());
        md.Append($"\n![training loss]({png})\n");

        var path = Path.Combine(folder, "ablation.md");
        AtomicWrite.Text(path, md.ToString());
        var summary = new AblationSummary(name, budget, seeds, arms, cells, differences);
        AtomicWrite.Text(Path.Combine(folder, "ablation.json"), JsonSerializer.Serialize(new
        {
            name, budget, seeds, arms, scores = cells, differences = differences.Select(d => new { d.Task, d.Metric, d.Baseline, d.Arm, d.Value, d.Low, d.High, d.Significant }),
            models = scores.Select(s => new { s.Arm, s.Seed, s.Checkpoint }),
        }, new JsonSerializerOptions { WriteIndented = true }));
        return (path, summary);
    }

    /// <summary>The metrics of a task's per-example values: a perplexity task's bits per byte, else each one recorded.</summary>
    private static IEnumerable<string> Metrics(Dictionary<string, IReadOnlyList<double>> samples) =>
        samples.ContainsKey("nll") ? ["bits_per_byte"] : samples.Keys.Order(StringComparer.Ordinal);

    private static double Metric(Dictionary<string, IReadOnlyList<double>> samples, string metric, IReadOnlyList<int> examples) => metric == "bits_per_byte"
        ? examples.Sum(i => samples["nll"][i]) / Math.Max(1, examples.Sum(i => samples["bytes"][i])) / Math.Log(2)
        : examples.Average(i => samples[metric][i]);

    private static double StandardDeviation(double[] values)
    {
        var mean = values.Average();
        return Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Length - 1));
    }

    private static string F(double value) => value.ToString("F4", CultureInfo.InvariantCulture);
}
