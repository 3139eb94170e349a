using System.Globalization;
using System.Text;
using System.Text.Json;
using Markdig;
using Pipeline.Cleaner;
using Pipeline.Contracts.V1;
using Pipeline.Crawler;
using Pipeline.Dedup;
using Pipeline.Evaluator;
using Pipeline.Evaluator.Tasks;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Tokenizer;

namespace Pipeline.Cli;

/// <summary>
/// The end-of-run report: what each stage did, the loss curve and the evaluation scores, as Markdown (report.md, with
/// PNG plots beside it) and the same as one HTML file (report.html, the plots inline).
/// </summary>
public static class RunReport
{
    /// <param name="derived">The runs the alignment phase made (<see cref="RunRequest.DerivedRuns"/>).</param>
    public static string Write(Ledger ledger, string runId, string runName, string folder, IReadOnlyList<DerivedRun>? derived = null)
    {
        Directory.CreateDirectory(folder);
        var md = new StringBuilder($"# Run {runId}\n\n");
        WriteCrawl(md, ledger, runId);
        WriteClean(md, ledger, runId);

        var dedup = ledger.Artifacts.Stats(runId, ShardDeduplicator.Stage).Select(j => JsonSerializer.Deserialize<DedupStats>(j)!).ToList();
        md.Append($"## Dedup\n\n{dedup.Sum(d => d.Input):N0} documents in, {dedup.Sum(d => d.Kept):N0} kept, {dedup.Sum(d => d.Removed):N0} near-duplicates removed.\n\n");

        WriteSemanticDedup(md, ledger, runId);

        var tokens = ledger.Artifacts.Stats(runId, CorpusTokenizer.Stage).Select(j => JsonSerializer.Deserialize<TokenShardStats>(j)!).ToList();
        md.Append($"## Tokenize\n\nTokenizer {tokens.FirstOrDefault()?.TokenizerHash}: {tokens.Sum(t => t.TrainTokens):N0} training and {tokens.Sum(t => t.ValidationTokens):N0} validation tokens.\n\n");
        // Of duplicates the copy with the smallest document id is kept whatever arrived first, so a copy kept before
        // its smaller twin arrived is left in its dedup shard and skipped here.
        if (tokens.Sum(t => t.Excluded) is > 0 and var skipped)
            md.Append($"{skipped:N0} documents kept by dedup were not tokenized: duplicates kept before a copy with a smaller id arrived (the smallest id is kept, whatever the order of arrival), and any that decontamination removed.\n\n");
        if (ledger.Documents.Get(LedgerKeys.ExcludedDocuments(runId)) is { } excludedJson)
            md.Append($"Decontamination (Pipeline:Decontaminate:Remove): {JsonSerializer.Deserialize<ExcludedDocuments>(excludedJson)!.Documents:N0} documents that contain evaluation examples were removed before tokenization.\n\n");
        if (tokens.Count > 0 && tokens.Sum(t => t.ValidationTokens) == 0)
            md.Append("**Warning: the validation split is empty; validation loss was measured on the tail of the training data.**\n\n");

        WriteTraining(md, ledger, runName, folder);
        WriteEvaluation(md, ledger, runId, runName, folder, derived ?? []);
        WriteAlignment(md, ledger, folder, derived ?? []);
        WriteReleases(md, ledger, runId, folder);

        var path = Path.Combine(folder, "report.md");
        AtomicWrite.Text(path, md.ToString());
        AtomicWrite.Text(Path.Combine(folder, "report.html"), Html(md.ToString(), folder, runId));
        return path;
    }

    private static void WriteCrawl(StringBuilder md, Ledger ledger, string runId)
    {
        if (ledger.Documents.Get(LedgerKeys.CrawlSummary(runId)) is not { } json) return;
        var crawl = JsonSerializer.Deserialize<CrawlSummary>(json)!;
        md.Append("## Crawl\n\n| pages | shards | retries | failed URLs queued again |\n|---:|---:|---:|---:|\n")
            .Append($"| {crawl.Pages:N0} | {crawl.Shards:N0} | {crawl.Retries:N0} | {crawl.Requeued:N0} |\n\n");
        md.Append("| URL state | URLs |\n|---|---:|\n");
        foreach (var (state, count) in crawl.ByState.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)) md.Append($"| {state} | {count:N0} |\n");
        if (crawl.ByReason.Count > 0)
        {
            md.Append("\n| not fetched or not kept, because | URLs |\n|---|---:|\n");
            foreach (var (reason, count) in crawl.ByReason.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)) md.Append($"| {reason} | {count:N0} |\n");
        }
        md.Append('\n');
    }

    private static void WriteClean(StringBuilder md, Ledger ledger, string runId)
    {
        var clean = new CleanReport();
        foreach (var json in ledger.Artifacts.Stats(runId, ShardCleaner.Stage)) clean.Add(JsonSerializer.Deserialize<CleanReport>(json)!);
        md.Append($"## Clean\n\n{clean.Input:N0} pages in ({clean.InputChars:N0} characters), {clean.Kept:N0} documents kept ({clean.KeptChars:N0} characters), {clean.PiiMasked:N0} PII spans masked.\n\n");
        md.Append("| rule, in the order the cleaner applies them | documents removed | characters removed |\n|---|---:|---:|\n");
        foreach (var (rule, count) in clean.RemovalsInOrder()) md.Append($"| {rule} | {count.Documents:N0} | {count.Chars:N0} |\n");
        md.Append("\nKept by language: ").Append(string.Join(", ", clean.Languages.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} {kv.Value:N0}"))).Append("\n\n");
    }

    /// <summary>Semantic dedup (when the run had it): what was removed, where, and examples of removed pairs at both ends of the similarity range.</summary>
    private static void WriteSemanticDedup(StringBuilder md, Ledger ledger, string runId)
    {
        if (ledger.Documents.Get(LedgerKeys.SemanticDedup(runId)) is not { } json) return;
        var summary = JsonSerializer.Deserialize<SemanticDedupSummary>(json)!;
        md.Append($"## Semantic dedup\n\n{summary.Documents:N0} documents in {summary.Clusters.Count:N0} clusters (ε {summary.Settings.Epsilon}, prototype fraction {summary.Settings.PrototypeFraction}): ")
            .Append($"{summary.Duplicates:N0} semantic duplicates and {summary.Prototypes:N0} prototypes removed before tokenization.\n\n");
        md.Append("| cluster | documents | duplicates removed | prototypes removed |\n|---:|---:|---:|---:|\n");
        foreach (var cluster in summary.Clusters.Take(10)) md.Append($"| {cluster.Cluster} | {cluster.Documents:N0} | {cluster.Duplicates:N0} | {cluster.Prototypes:N0} |\n");
        if (summary.Clusters.Count > 10) md.Append($"| ({summary.Clusters.Count - 10:N0} more) | | | |\n");
        if (summary.Examples.Count > 0)
        {
            md.Append("\n| removed | kept | similarity |\n|---|---|---:|\n");
            static string Cell(string id, string text) => $"{id}: {text.ReplaceLineEndings(" ").Replace("|", "\\|", StringComparison.Ordinal)}";
            foreach (var pair in summary.Examples) md.Append($"| {Cell(pair.RemovedId, pair.Removed)} | {Cell(pair.KeptId, pair.Kept)} | {Format(pair.Similarity)} |\n");
        }
        md.Append('\n');
    }

    private static void WriteTraining(StringBuilder md, Ledger ledger, string runName, string folder)
    {
        var metrics = ledger.Evaluations.Metrics(runName, "train");
        md.Append("## Training\n\n");
        if (metrics.Count == 0)
        {
            md.Append("No training steps recorded.\n\n");
            return;
        }
        List<(double, double)> Series(string name) => metrics.Where(m => m.Name == name).Select(m => ((double)m.Step, m.Value)).ToList();
        var png = $"{EvalReport.Safe(runName)}-loss.png";
        EvalReport.Plot(Path.Combine(folder, png), $"{runName}: loss", [("train", Series("loss")), ("validation", Series("val_loss"))]);
        md.Append($"![loss]({png})\n\n| step | loss | val loss | tokens/s |\n|---:|---:|---:|---:|\n");
        foreach (var step in metrics.GroupBy(m => m.Step))
        {
            string Value(string name, string format = "F4") => step.FirstOrDefault(m => m.Name == name) is { Name: not null } m ? m.Value.ToString(format, CultureInfo.InvariantCulture) : "";
            md.Append($"| {step.Key} | {Value("loss")} | {Value("val_loss")} | {Value("tokens_per_second", "N0")} |\n");
        }
        md.Append('\n');
    }

    /// <summary>
    /// One wide table: a row per checkpoint (the aligned model's labelled by the base step it started from), a column
    /// per task metric with its standard error; under the header, each task's number of examples, the chance score of
    /// a multiple-choice task and how many of its examples were found in the training corpus.
    /// </summary>
    private static void WriteEvaluation(StringBuilder md, Ledger ledger, string runId, string runName, string folder, IReadOnlyList<DerivedRun> derived)
    {
        md.Append("## Evaluation\n\n");
        var checkpoints = new List<(string Label, double X, IReadOnlyList<EvalRow> Rows)>();
        foreach (var group in ledger.Evaluations.Evals(runName).GroupBy(e => e.Step).OrderBy(g => g.Key))
            checkpoints.Add(($"{runName} step {group.Key}", group.Key, group.ToList()));
        foreach (var made in derived)
            foreach (var group in ledger.Evaluations.Evals(made.Run).GroupBy(e => e.Step).OrderBy(g => g.Key))
                checkpoints.Add(($"{made.Run} step {group.Key} (from {made.From})", made.StartStep + group.Key, group.ToList()));
        // Quantized copies of the run's checkpoints (pipeline run --release int8), at the step they were made from.
        foreach (var quantized in LineageStore.All(ledger.Documents).Where(l => l.Method == Release.CheckpointQuantizer.Method && l.Base?.Run == runName))
            foreach (var group in ledger.Evaluations.Evals(quantized.Run).GroupBy(e => e.Step).OrderBy(g => g.Key))
                checkpoints.Add(($"{quantized.Run} step {group.Key} (quantized)", group.Key, group.ToList()));
        if (checkpoints.Count == 0)
        {
            md.Append("No evaluations recorded.\n\n");
            return;
        }
        var all = checkpoints.SelectMany(c => c.Rows).ToList();
        var columns = EvalMetrics.Columns(all);
        string Of(string task, string metric) => all.LastOrDefault(e => e.Task == task && e.Metric == metric) is { } e ? Format(e.Value) : "";
        var contamination = ledger.Documents.Get(LedgerKeys.Contamination(runId)) is { } contaminationJson
            ? JsonSerializer.Deserialize<List<TaskContamination>>(contaminationJson)!.ToDictionary(c => c.Task, c => $"{c.Contaminated}/{c.Examples}")
            : [];

        md.Append("Each cell is the score ± its standard error (lm-eval's). Contaminated: the task's examples whose 13-word or 50-character n-grams occur in the training corpus, before any removal.\n\n");
        md.Append("| checkpoint | ").Append(string.Join(" | ", columns.Select(c => $"{c.Task}<br>{c.Metric}"))).Append(" |\n");
        md.Append("|---|").Append(string.Concat(columns.Select(_ => "---:|"))).Append('\n');
        md.Append("| *examples (n)* | ").Append(string.Join(" | ", columns.Select(c => Of(c.Task, "examples")))).Append(" |\n");
        md.Append("| *chance* | ").Append(string.Join(" | ", columns.Select(c => c.Metric.StartsWith("acc", StringComparison.Ordinal) ? Of(c.Task, TaskRunner.ChanceMetric) : ""))).Append(" |\n");
        if (contamination.Count > 0)
            md.Append("| *contaminated* | ").Append(string.Join(" | ", columns.Select(c => contamination.GetValueOrDefault(c.Task, "")))).Append(" |\n");
        foreach (var (label, _, rows) in checkpoints)
        {
            string Cell((string Task, string Metric) c)
            {
                if (rows.FirstOrDefault(e => e.Task == c.Task && e.Metric == c.Metric) is not { } score) return "";
                return rows.FirstOrDefault(e => e.Task == c.Task && e.Metric == c.Metric + TaskRunner.StderrSuffix) is { } se
                    ? $"{Format(score.Value)} ± {Format(se.Value)}" : Format(score.Value);
            }
            md.Append($"| {label} | ").Append(string.Join(" | ", columns.Select(Cell))).Append(" |\n");
        }
        md.Append('\n');

        // A plot per metric across checkpoints; an aligned model's points sit after the step it started from, not at its own steps.
        foreach (var (task, metric) in columns)
        {
            var series = new List<(string, List<(double, double)>)>();
            foreach (var (run, legend) in derived.Select(d => (d.Run, $"{d.Run} (from {d.From})")).Prepend((runName, runName)))
                series.Add((legend, checkpoints.Where(c => c.Rows.Count > 0 && c.Rows[0].RunName == run)
                    .SelectMany(c => c.Rows.Where(e => e.Task == task && e.Metric == metric).Select(e => (c.X, e.Value))).ToList()));
            if (series.Sum(s => s.Item2.Count) < 2) continue;
            var png = $"{EvalReport.Safe(task)}-{EvalReport.Safe(metric)}.png";
            EvalReport.Plot(Path.Combine(folder, png), $"{task}: {metric}", series);
            md.Append($"![{task}: {metric}]({png})\n\n");
        }
    }

    /// <summary>
    /// The alignment phase: each job's method, start and loss; a reward model's held-out accuracy; an RL job's reward,
    /// KL (and its coefficient), entropy, clip fraction and completion length per step, as a table and a plot.
    /// </summary>
    private static void WriteAlignment(StringBuilder md, Ledger ledger, string folder, IReadOnlyList<DerivedRun> derived)
    {
        if (derived.Count == 0) return;
        // Each job's figures read once, for the summary table and for its own section.
        var figuresOf = derived.ToDictionary(d => d.Run, d => ledger.Evaluations.Metrics(d.Run, EvaluationStore.AlignmentKind));
        md.Append("## Alignment\n\n| run | method | from | state | steps | loss, first → last |\n|---|---|---|---|---:|---|\n");
        foreach (var made in derived)
        {
            var job = ledger.Jobs.List(JobKinds.Alignment, made.Run + ":").FirstOrDefault();
            var losses = figuresOf[made.Run].Where(m => m.Name == "loss").ToList();
            md.Append($"| {made.Run} | {made.Method} | {made.From} | {(job is null ? "not started" : job.State.Name() + (job.Error is null ? "" : ": " + job.Error))} | " +
                      $"{(losses.Count == 0 ? "" : losses.Max(m => m.Step).ToString(CultureInfo.InvariantCulture))} | {(losses.Count == 0 ? "" : $"{Format(losses[0].Value)} → {Format(losses[^1].Value)}")} |\n");
        }
        md.Append('\n');
        foreach (var made in derived)
        {
            var metrics = figuresOf[made.Run];
            // A reward model's accuracy on the pairs it held out, beside its last checkpoint when this host has it.
            var runFolder = Path.Combine(folder, "..", Model.Checkpoints.RunFolder(made.Run));
            if (made.Method == "reward" && Directory.Exists(runFolder) && Model.Checkpoints.List(runFolder).LastOrDefault() is { } last
                && Path.Combine(last, Alignment.AlignmentJob.HeldOutFile) is var heldOutFile && File.Exists(heldOutFile)
                && JsonSerializer.Deserialize<Alignment.HeldOutRewards>(File.ReadAllText(heldOutFile)) is { } held)
                md.Append($"Reward model {made.Run}: chosen preferred in {held.Accuracy:P1} of {held.Pairs} held-out pairs, mean margin {Format(held.Margin)}.\n\n");
            if (!metrics.Any(m => m.Name == "reward")) continue;
            string[] figures = ["reward", "kl", "kl_coefficient", "entropy", "clip_fraction", "completion_length"];
            var steps = metrics.Select(m => m.Step).Distinct().Order().ToList();
            // About ten rows, evenly spaced, always the first and the last step.
            var shown = steps.Where((_, i) => i % Math.Max(1, steps.Count / 10) == 0 || i == steps.Count - 1).ToList();
            md.Append($"{made.Method} {made.Run}, per step (reward: the reward model's score or the verifier's; KL to the starting policy per completion, in nats):\n\n")
                .Append("| step | ").Append(string.Join(" | ", figures.Select(f => f.Replace('_', ' ')))).Append(" |\n|---:|").Append(string.Concat(figures.Select(_ => "---:|"))).Append('\n');
            foreach (var step in shown)
                md.Append($"| {step} | ").Append(string.Join(" | ", figures.Select(f => metrics.FirstOrDefault(m => m.Step == step && m.Name == f) is { Name: not null } m ? Format(m.Value) : ""))).Append(" |\n");
            List<(double, double)> Series(string name) => metrics.Where(m => m.Name == name).Select(m => ((double)m.Step, m.Value)).ToList();
            var png = $"{EvalReport.Safe(made.Run)}-rl.png";
            EvalReport.Plot(Path.Combine(folder, png), $"{made.Run}: reward and KL", [("reward", Series("reward")), ("KL", Series("kl"))]);
            md.Append($"\n![{made.Run}: reward and KL]({png})\n\n");
        }
    }

    /// <summary>The run's releases (--release): each target, what it was made from and what it wrote, and how it ended.</summary>
    private static void WriteReleases(StringBuilder md, Ledger ledger, string runId, string folder)
    {
        var jobs = ledger.Jobs.Names(JobKinds.Release).Select(name => ledger.Jobs.Get<ReleaseRequested>(JobKinds.Release, name))
            .OfType<LedgerJob<ReleaseRequested>>().Where(j => j.Request.RunId == runId).ToList();
        if (jobs.Count == 0) return;
        md.Append("## Release\n\n| target | from | wrote | state |\n|---|---|---|---|\n");
        foreach (var job in jobs.OrderBy(j => j.Request.CheckpointUri, StringComparer.Ordinal).ThenBy(j => j.Request.Target, StringComparer.Ordinal))
        {
            var wrote = "";
            if (job.State == JobState.Completed && RunLineage.RunAndStep(job.Request.CheckpointUri) is { } source)
            {
                wrote = Release.ReleaseTarget.Parse(job.Request.Target).Output(source.Run, source.Step);
                // The report sits in <root>/reports: the file is beside it when this host wrote or fetched it.
                var file = new FileInfo(Path.Combine(folder, "..", wrote));
                if (file.Exists) wrote += $" ({file.Length / 1048576.0:F2} MiB)";
            }
            md.Append($"| {job.Request.Target} | {job.Request.CheckpointUri} | {wrote} | {job.State.Name()}{(job.Error is null ? "" : ": " + job.Error)} |\n");
        }
        md.Append('\n');
    }

    private static string Format(double value) =>
        double.IsNaN(value) ? "n/a" : Math.Abs(value) >= 1000 || value == Math.Round(value) ? value.ToString("#,0.##", CultureInfo.InvariantCulture) : value.ToString("F4", CultureInfo.InvariantCulture);

    /// <summary>The Markdown as one HTML page (Markdig, with pipe tables), its PNG plots embedded so the file stands alone.</summary>
    private static string Html(string markdown, string folder, string runId)
    {
        var pipeline = new MarkdownPipelineBuilder().UsePipeTables().Build();
        var body = Markdown.ToHtml(markdown, pipeline);
        foreach (var png in Directory.GetFiles(folder, "*.png"))
            body = body.Replace($"src=\"{Path.GetFileName(png)}\"", $"src=\"data:image/png;base64,{Convert.ToBase64String(File.ReadAllBytes(png))}\"", StringComparison.Ordinal);
        return $$"""
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Run {{System.Net.WebUtility.HtmlEncode(runId)}}</title>
            <style>
            body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
            table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
            th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; }
            th { background: #f3f3f3; }
            td { font-variant-numeric: tabular-nums; }
            img { max-width: 100%; }
            </style></head><body>
            {{body}}
            </body></html>
            """;
    }
}
