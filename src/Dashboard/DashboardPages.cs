using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Pipeline.Hosting;
using Pipeline.Runtime;

namespace Pipeline.Dashboard;

/// <summary>
/// The dashboard's HTML, rendered on the server from the run ledger: the runs list, and a run's page whose main part
/// (the fragment) the browser swaps in again on every live update. Everything from the ledger is HTML-encoded: URLs
/// and errors there come from crawled pages and messages.
/// </summary>
public sealed class DashboardPages(Ledger ledger, bool canCancel)
{
    private static readonly string[] StageOrder = [.. Contracts.StageNames.InOrder];

    private static string E(string? text) => WebUtility.HtmlEncode(text ?? "");

    private static string N(double value, string format = "N0") => value.ToString(format, CultureInfo.InvariantCulture);

    public static string Layout(string title, string body, string? live = null) => $"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>{E(title)}</title>
        <link rel="icon" href="data:,"><link rel="stylesheet" href="/dashboard.css"></head>
        <body><header><a href="/">Pipeline</a><span>{E(title)}</span><span id="live">{E(live)}</span></header>
        {body}
        <script src="/dashboard.js"></script></body></html>
        """;

    public string Runs()
    {
        var html = new StringBuilder("<main><section><h2>Runs</h2><table><tr><th>run</th><th>name</th><th>created</th><th>state</th><th>stages</th></tr>");
        foreach (var run in ledger.Runs.List().OrderByDescending(r => r.Created, StringComparer.Ordinal))
        {
            var stages = string.Join(", ", run.Stages.Select(s => $"{s.Stage} {N(s.Rows)}"));
            html.Append($"<tr><td><a href=\"/runs/{Uri.EscapeDataString(run.RunId)}\">{E(run.RunId)}</a></td><td>{E(run.Name)}</td><td>{E(run.Created)}</td>")
                .Append($"<td class=\"state-{E(run.State)}\">{E(run.State)}</td><td>{E(stages)}</td></tr>");
        }
        html.Append("</table></section>");
        Ablations(html);
        return Layout("runs", html.Append("</main>").ToString());
    }

    /// <summary>Every ablation in the ledger (`pipeline ablate`): its arms, and each pair's paired difference with its 95 % interval.</summary>
    private void Ablations(StringBuilder html)
    {
        var ablations = ledger.Documents.KeysWithPrefix(LedgerKeys.Ablation("")).Select(key => ledger.Documents.Get(key)).OfType<string>()
            .Select(json => System.Text.Json.JsonSerializer.Deserialize<AblationSummary>(json)).OfType<AblationSummary>().OrderBy(a => a.Name, StringComparer.Ordinal).ToList();
        if (ablations.Count == 0) return;
        html.Append("<section id=\"ablations\"><h2>Ablations</h2>");
        foreach (var ablation in ablations)
        {
            html.Append($"<h3>{E(ablation.Name)}</h3><p class=\"muted\">{N(ablation.Budget)} training tokens per model, {ablation.Seeds.Count} seed(s) per arm</p>")
                .Append("<table><tr><th>arm</th><th>documents kept</th><th>training tokens</th><th>epochs</th></tr>");
            foreach (var arm in ablation.Arms)
                html.Append($"<tr><td>{E(arm.Name)}</td><td class=\"n\">{N(arm.Documents)}</td><td class=\"n\">{N(arm.TrainTokens)}</td><td class=\"n\">{N(arm.Epochs, "F2")}</td></tr>");
            html.Append("</table><table><tr><th>task</th><th>metric</th><th>arm − baseline</th><th>difference</th><th>95 % interval</th></tr>");
            foreach (var d in ablation.Differences)
                html.Append($"<tr class=\"{(d.Significant ? "significant" : "")}\"><td>{E(d.Task)}</td><td>{E(d.Metric)}</td><td>{E(d.Arm)} − {E(d.Baseline)}</td>")
                    .Append($"<td class=\"n\">{N(d.Value, "F4")}{(d.Significant ? " *" : "")}</td><td>[{N(d.Low, "F4")}, {N(d.High, "F4")}]</td></tr>");
            html.Append("</table>");
        }
        html.Append("</section>");
    }

    public string RunPage(string runId, string fragment)
    {
        var id = Uri.EscapeDataString(runId);
        return Layout($"run {runId}", $"<main id=\"run\" data-events=\"/runs/{id}/events\" data-fragment=\"/runs/{id}/fragment\">{fragment}</main>", "connecting...");
    }

    /// <summary>The run's sections; null when the ledger has no such run.</summary>
    /// <param name="formToken">The anti-forgery token a state-changing form must carry (the cancel form); null: no form is offered.</param>
    public string? RunFragment(string runId, IReadOnlyList<QueueInfo>? queues, string? formToken = null)
    {
        var run = ledger.Runs.List().FirstOrDefault(r => r.RunId == runId);
        if (run is null) return null;
        var html = new StringBuilder();
        html.Append($"<section><h2>Run {E(run.RunId)} <span class=\"state-{E(run.State)}\">{E(run.State)}</span></h2><p class=\"muted\">training run {E(run.Name)}, created {E(run.Created)}</p></section>");
        Stages(html, run);
        Crawl(html, runId);
        Jobs(html, runId, run.Name, formToken);
        Training(html, run.Name);
        Evaluation(html, run.Name);
        if (queues is not null) Queues(html, queues);
        return html.ToString();
    }

    private void Stages(StringBuilder html, RunSummary run)
    {
        var stages = run.Stages.OrderBy(s => Array.IndexOf(StageOrder, s.Stage) is var i and >= 0 ? i : StageOrder.Length).ThenBy(s => s.Stage, StringComparer.Ordinal).ToList();
        html.Append("<section id=\"stages\"><h2>Stages</h2><table><tr><th>stage</th><th>shards</th><th>rows</th><th>MB</th><th>inputs done</th><th>failed</th></tr>");
        foreach (var stage in stages)
        {
            var failed = ledger.Artifacts.Failures(run.RunId, stage.Stage).Count;
            html.Append($"<tr data-stage=\"{E(stage.Stage)}\"><td>{E(stage.Stage)}</td><td class=\"n\">{N(stage.Shards)}</td><td class=\"n\">{N(stage.Rows)}</td>")
                .Append($"<td class=\"n\">{N(stage.Bytes / 1e6, "F1")}</td><td class=\"n\">{N(ledger.Artifacts.ProcessedCount(run.RunId, stage.Stage))}</td>")
                .Append($"<td class=\"n{(failed > 0 ? " state-failed" : "")}\">{N(failed)}</td></tr>");
        }
        html.Append("</table>");
        // Throughput: rows written over time, per stage, in minutes since the run's first shard.
        var timeline = ledger.Artifacts.Timeline(run.RunId);
        if (timeline.Count > 0)
        {
            var start = timeline.Min(t => t.Created);
            var series = timeline.GroupBy(t => t.Stage).Select(g =>
            {
                long total = 0;
                return (g.Key, (IReadOnlyList<(double, double)>)g.Select(t => ((t.Created - start).TotalMinutes, (double)(total += t.Rows))).ToList());
            }).ToList();
            html.Append(SvgChart.Lines("rows written (cumulative)", series, "min"));
        }
        var failures = StageOrder.Concat(stages.Select(s => s.Stage)).Distinct().SelectMany(s => ledger.Artifacts.Failures(run.RunId, s).Select(f => (Stage: s, f.InputId, f.Error))).ToList();
        if (failures.Count > 0)
        {
            html.Append("<h2>Failures</h2><table><tr><th>stage</th><th>input shard</th><th>error</th></tr>");
            foreach (var (stage, input, error) in failures) html.Append($"<tr><td>{E(stage)}</td><td>{E(input)}</td><td class=\"error\">{E(error)}</td></tr>");
            html.Append("</table>");
        }
        html.Append("</section>");
    }

    private void Crawl(StringBuilder html, string runId)
    {
        html.Append("<section id=\"crawl\"><h2>Crawl</h2>");
        if (ledger.Documents.Get(LedgerKeys.CrawlSummary(runId)) is not { } json)
        {
            // Still crawling: the job's live counters (one row per part of a split crawl); URL states come at the end.
            html.Append("<table><tr><th>crawl job</th><th>fetched</th><th>failed</th><th>queued</th><th>shards</th></tr>");
            foreach (var key in ledger.Documents.CrawlProgressKeys(runId))
            {
                using var counters = JsonDocument.Parse(ledger.Documents.Get(key)!);
                long Count(string name) => counters.RootElement.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64() : 0;
                html.Append($"<tr class=\"crawl-progress\"><td>{E(key)}</td><td class=\"n\">{N(Count("Fetched"))}</td><td class=\"n\">{N(Count("Failed"))}</td>")
                    .Append($"<td class=\"n\">{N(Count("Queued"))}</td><td class=\"n\">{N(Count("Shards"))}</td></tr>");
            }
            html.Append("</table><p class=\"muted\">the URL states and skip reasons are summarized when the crawl ends</p></section>");
            return;
        }
        using var summary = JsonDocument.Parse(json);
        html.Append("<div class=\"grid\">");
        foreach (var (name, title) in new[] { ("ByState", "URL state"), ("ByReason", "reason") })
        {
            if (!summary.RootElement.TryGetProperty(name, out var map) || map.ValueKind != JsonValueKind.Object || !map.EnumerateObject().Any()) continue;
            html.Append($"<table><tr><th>{title}</th><th>URLs</th></tr>");
            foreach (var item in map.EnumerateObject().OrderByDescending(p => p.Value.GetInt32()))
                html.Append($"<tr><td>{E(item.Name)}</td><td class=\"n\">{N(item.Value.GetInt32())}</td></tr>");
            html.Append("</table>");
        }
        html.Append("</div></section>");
    }

    private void Jobs(StringBuilder html, string runId, string runName, string? formToken)
    {
        // This run's jobs only: its crawl (or the parts of it), its training, and the alignments of models made from it
        // (named "<run name>-<method>-from-<step>"); a bare prefix would also take run "r2"'s jobs for run "r".
        var jobs = ledger.Jobs.List(JobKinds.Crawl, runId).Where(j => j.Name == runId || j.Name.StartsWith(runId + "/p", StringComparison.Ordinal))
            .Concat(ledger.Jobs.List(JobKinds.Training, runName).Where(j => j.Name == runName))
            .Concat(ledger.Jobs.List(JobKinds.Alignment, runName + "-")).ToList();
        html.Append("<section id=\"jobs\"><h2>Long jobs</h2>");
        if (jobs.Count == 0)
        {
            html.Append("<p class=\"muted\">none yet</p></section>");
            return;
        }
        html.Append("<table><tr><th>job</th><th>state</th><th>error</th><th></th></tr>");
        foreach (var job in jobs)
        {
            var state = job.State.Name();
            var cancel = "";
            if (job is { Kind: JobKinds.Training, State: JobState.Running } && canCancel && formToken is not null)
                cancel = $"<form class=\"cancel\" method=\"post\" action=\"/runs/{Uri.EscapeDataString(runId)}/cancel-training\"><input type=\"hidden\" name=\"run\" value=\"{E(job.Name)}\">" +
                    $"<input type=\"hidden\" name=\"{DashboardServer.FormTokenField}\" value=\"{E(formToken)}\"><button>cancel training</button></form>";
            html.Append($"<tr><td>{E(job.Key)}</td><td class=\"state-{E(state)}\">{E(state)}</td><td class=\"error\">{E(job.Error ?? "")}</td><td>{cancel}</td></tr>");
        }
        html.Append("</table></section>");
    }

    private void Training(StringBuilder html, string runName)
    {
        var metrics = ledger.Evaluations.Metrics(runName, "train");
        html.Append("<section id=\"training\"><h2>Training</h2>");
        if (metrics.Count == 0)
        {
            html.Append("<p class=\"muted\">no steps yet</p></section>");
            return;
        }
        IReadOnlyList<(double, double)> Series(string name) => metrics.Where(m => m.Name == name).Select(m => ((double)m.Step, m.Value)).ToList();
        var last = metrics.Max(m => m.Step);
        var tps = metrics.LastOrDefault(m => m.Name == "tokens_per_second");
        html.Append($"<p>step {N(last)}{(tps.Name is null ? "" : $", {N(tps.Value)} tokens/s")}</p><div class=\"grid\">")
            .Append(SvgChart.Lines("loss", [("train", Series("loss")), ("validation", Series("val_loss"))]))
            .Append(SvgChart.Lines("tokens/s", [("tokens/s", Series("tokens_per_second"))]))
            .Append("</div></section>");
    }

    private void Evaluation(StringBuilder html, string runName)
    {
        // The run's checkpoints and those of the models made from it: aligned, distilled or quantized (their lineage
        // names a checkpoint of this run; older ledgers without lineage: run names that extend the base's).
        var lineage = LineageStore.All(ledger.Documents).ToDictionary(l => l.Run);
        // Every generation: base → SFT → reward model and RL policy (each names the one before it as its base).
        var children = new Dictionary<string, RunLineage>();
        for (var added = true; added;)
        {
            added = false;
            foreach (var l in lineage.Values.Where(l => l.Run != runName && !children.ContainsKey(l.Run) && l.Base is { } b && (b.Run == runName || children.ContainsKey(b.Run))))
                added = children.TryAdd(l.Run, l);
        }
        bool Related(string run) => run == runName || children.ContainsKey(run) || (!lineage.ContainsKey(run) && run.StartsWith(runName + "-", StringComparison.Ordinal));
        var evals = ledger.Evaluations.Evals().Where(e => Related(e.RunName)).ToList();
        html.Append("<section id=\"evaluation\"><h2>Evaluation</h2>");
        if (evals.Count == 0)
        {
            html.Append("<p class=\"muted\">no checkpoint scored yet</p>");
            Lineage(html, runName, lineage, children, evals, Derived(runName, children, evals));
            html.Append("</section>");
            return;
        }
        var columns = EvalMetrics.Columns(evals);
        html.Append("<div class=\"wide\"><table><tr><th>checkpoint</th>").Append(string.Concat(columns.Select(c => $"<th>{E(c.Task)}<br>{E(c.Metric)}</th>"))).Append("</tr>");
        foreach (var checkpoint in evals.GroupBy(e => (e.RunName, e.Step, e.Checkpoint)).OrderBy(g => g.Key.RunName != runName).ThenBy(g => g.Key.RunName, StringComparer.Ordinal).ThenBy(g => g.Key.Step))
        {
            html.Append($"<tr class=\"checkpoint\" data-checkpoint=\"{E(checkpoint.Key.Checkpoint)}\"><td>{E(checkpoint.Key.RunName)} step {N(checkpoint.Key.Step)}</td>");
            foreach (var (task, metric) in columns)
            {
                var score = checkpoint.FirstOrDefault(e => e.Task == task && e.Metric == metric);
                var se = checkpoint.FirstOrDefault(e => e.Task == task && e.Metric == metric + EvalMetrics.StderrSuffix);
                html.Append($"<td class=\"n\">{(score is null ? "" : N(score.Value, "F4") + (se is null ? "" : " ± " + N(se.Value, "F4")))}</td>");
            }
            html.Append("</tr>");
        }
        html.Append("</table></div><div class=\"grid\">");
        // A fine-tuned model's checkpoints are drawn after the base step it started from; a student and a quantized
        // copy, which count their own steps, at their own.
        foreach (var (task, metric) in columns.Take(6))
        {
            var series = evals.Where(e => e.Task == task && e.Metric == metric).GroupBy(e => e.RunName)
                .Select(g => (Legend(g.Key, runName), (IReadOnlyList<(double, double)>)g.Select(e => (StartStep(g.Key, runName, children) + e.Step, e.Value)).ToList())).ToList();
            html.Append(SvgChart.Lines($"{task}: {metric}", series));
        }
        html.Append("</div>");
        var derived = Derived(runName, children, evals);
        Lineage(html, runName, lineage, children, evals, derived);
        AlignmentCurves(html, derived);
        html.Append("</section>");
    }

    /// <summary>Each alignment job's curves per step (its loss, and RL's reward, KL, entropy, clip fraction and completion length), when it recorded them.</summary>
    private void AlignmentCurves(StringBuilder html, IEnumerable<string> runs)
    {
        var charts = new StringBuilder();
        foreach (var run in runs)
        {
            var metrics = ledger.Evaluations.Metrics(run, EvaluationStore.AlignmentKind);
            if (metrics.Count == 0) continue;
            IReadOnlyList<(double, double)> Series(string name) => metrics.Where(m => m.Name == name).Select(m => ((double)m.Step, m.Value)).ToList();
            charts.Append(SvgChart.Lines($"{run}: loss", [("loss", Series("loss"))]));
            if (metrics.Any(m => m.Name == "reward"))
            {
                charts.Append(SvgChart.Lines($"{run}: reward and KL", [("reward", Series("reward")), ("kl", Series("kl")), ("entropy", Series("entropy"))]));
                charts.Append(SvgChart.Lines($"{run}: clip fraction and completion length", [("clip fraction", Series("clip_fraction")), ("completion tokens", Series("completion_length"))]));
            }
        }
        if (charts.Length > 0) html.Append("<h2>Alignment jobs</h2><div class=\"grid\">").Append(charts).Append("</div>");
    }

    /// <summary>
    /// Where this run's model came from (a student's teacher, a quantized copy's source) and what was made from it,
    /// each with its method and how many of its checkpoints and tasks are scored.
    /// </summary>
    private static void Lineage(StringBuilder html, string runName, Dictionary<string, RunLineage> lineage, Dictionary<string, RunLineage> children, List<EvalRow> evals,
        IReadOnlyList<string> derived)
    {
        if (derived.Count == 0 && !lineage.ContainsKey(runName)) return;
        html.Append("<h2>Lineage</h2><ul class=\"lineage\">");
        if (lineage.TryGetValue(runName, out var parent))
            html.Append($"<li>{From(parent)} → <b>{E(parent.Method)}</b> → {E(runName)}</li>");
        foreach (var run in derived)
        {
            var scored = evals.Where(e => e.RunName == run).ToList();
            var edge = children.TryGetValue(run, out var child)
                ? $"{From(child)} → <b>{E(child.Method)}</b>" + (child.Reward is { } reward ? $" (rewarded by {E(reward.Run)} step {N(reward.Step)})" : "")
                : $"{E(runName)} → <b>{E(run[(runName.Length + 1)..])}</b>";
            html.Append($"<li>{edge} → {E(run)}: {N(scored.Select(e => e.Checkpoint).Distinct().Count())} checkpoint(s), {N(scored.Select(e => e.Task).Distinct().Count())} tasks scored</li>");
        }
        html.Append("</ul>");
    }

    /// <summary>The runs made from this one: those scored beside it and those whose lineage names it, in name order.</summary>
    private static List<string> Derived(string runName, Dictionary<string, RunLineage> children, List<EvalRow> evals) =>
        evals.Select(e => e.RunName).Where(r => r != runName).Concat(children.Keys).Distinct().Order(StringComparer.Ordinal).ToList();

    private static string From(RunLineage lineage) => lineage.Base is { } b ? $"{E(b.Run)} step {N(b.Step)}" : E(lineage.BaseCheckpoint);

    // Fine-tunes continue their base's steps: lineage "sft"/"dpo" from a step (after the steps of the run that one
    // continued, for RL of an SFT model), or, without lineage, a run named "<base run>-<method>-from-<base step>"
    // (AlignmentRule.OutputRun).
    private static double StartStep(string run, string baseRun, Dictionary<string, RunLineage> children, int depth = 0)
    {
        if (run == baseRun) return 0;
        if (children.TryGetValue(run, out var child))
            return child.Method is "distill" or "quantize" || child.Base is not { } b ? 0
                : b.Step + (depth < 16 && b.Run != baseRun ? StartStep(b.Run, baseRun, children, depth + 1) : 0);
        return run.LastIndexOf("-from-", StringComparison.Ordinal) is var at and >= 0 && long.TryParse(run[(at + 6)..], out var step) ? step : 0;
    }

    // "sft-from-300": what follows the base's name, short enough for the legend; a run named otherwise (a student) whole.
    private static string Legend(string run, string baseRun) =>
        run == baseRun || !run.StartsWith(baseRun + "-", StringComparison.Ordinal) ? run : run[(baseRun.Length + 1)..];

    private static void Queues(StringBuilder html, IReadOnlyList<QueueInfo> queues)
    {
        html.Append("<section id=\"queues\"><h2>Queues</h2><table><tr><th>queue</th><th>messages</th><th>consumers</th></tr>");
        foreach (var queue in queues.OrderBy(q => q.Name, StringComparer.Ordinal))
            html.Append($"<tr><td>{E(queue.Name)}</td><td class=\"n\">{N(queue.Messages)}</td><td class=\"n\">{N(queue.Consumers)}</td></tr>");
        html.Append("</table></section>");
    }
}

/// <summary>A queue as RabbitMQ's management API reports it.</summary>
public sealed record QueueInfo(string Name, long Messages, long Consumers);
