using System.Globalization;
using System.Text.Json;
using Pipeline.Alignment;
using Pipeline.Contracts;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Runtime;

namespace Pipeline.Cli;

/// <summary>One stage of a run as the progress view shows it.</summary>
/// <param name="Done">Units done (pages, shards, steps, checkpoints).</param>
/// <param name="Total">Units in all, when known (the page limit, upstream shards once upstream is finished, steps).</param>
/// <param name="Rate">Units per second since the stage started, once it has moved.</param>
/// <param name="Detail">Rows, loss, tokens/s, scores: what the stage's numbers are.</param>
public sealed record StageRow(string Stage, string Unit, long Done, long? Total, double? Rate, TimeSpan? Eta, string Detail)
{
    public double? Fraction => Total is > 0 ? Math.Min(1, (double)Done / Total.Value) : null;
}

/// <summary>
/// The progress of a run read from the ledger, one row per stage in pipeline order (crawl, clean, dedup, tokenize,
/// train, evaluate, then a row per alignment job named by its method: sft, reward, ppo ...): what `pipeline run`
/// draws on a terminal and prints as plain lines elsewhere. Rates are
/// measured from the first reading at which a stage had moved, so they need successive calls on one instance.
/// </summary>
public sealed class RunProgress(Ledger ledger, string runId, string trainingRun, int maxPages, long maxSteps, IReadOnlyList<DerivedRun>? derived = null)
{
    private readonly Dictionary<string, (DateTime At, long Done)> _first = [];

    public IReadOnlyList<StageRow> Read(DateTime now)
    {
        var stages = ledger.Runs.List().FirstOrDefault(r => r.RunId == runId)?.Stages.ToDictionary(s => s.Stage) ?? [];
        StageSummary Of(string stage) => stages.GetValueOrDefault(stage) ?? new StageSummary(stage, 0, 0, 0);
        var crawlDone = ledger.Documents.Get(LedgerKeys.CrawlSummary(runId)) is not null;
        var rows = new List<StageRow>();

        var crawl = Of(StageNames.Crawl);
        // While crawling, pages fetched count before their shard is committed (the crawl job's live counters).
        var fetched = crawlDone ? crawl.Rows : Math.Max(crawl.Rows, ledger.Documents.CrawlProgressKeys(runId)
            .Sum(key => JsonSerializer.Deserialize<Crawler.CrawlCounters>(ledger.Documents.Get(key)!)?.Fetched ?? 0));
        rows.Add(Row(now, StageNames.Crawl, "pages", fetched, crawlDone ? crawl.Rows : maxPages, $"{crawl.Shards:N0} shards, {crawl.Bytes / 1e6:F1} MB"));
        // A stage's total is its upstream's shard count once the upstream has finished (before that it still grows).
        var upstreamDone = crawlDone;
        foreach (var (stage, upstream) in new[] { (StageNames.Clean, crawl), (StageNames.Dedup, Of(StageNames.Clean)), (StageNames.Tokenize, Of(StageNames.Dedup)) })
        {
            var summary = Of(stage);
            var done = ProcessedCount(stage);
            rows.Add(Row(now, stage, "shards", done, upstreamDone ? upstream.Shards : null, $"{summary.Rows:N0} rows, {summary.Bytes / 1e6:F1} MB"));
            upstreamDone = upstreamDone && done >= upstream.Shards;
        }

        var train = ledger.Evaluations.Metrics(trainingRun, "train");
        var step = train.Count == 0 ? 0 : train.Max(m => m.Step);
        string Last(string name, string format) => train.LastOrDefault(m => m.Name == name) is { Name: not null } m ? m.Value.ToString(format, CultureInfo.InvariantCulture) : "-";
        rows.Add(Row(now, "train", "steps", step, maxSteps, $"loss {Last("loss", "F3")}, val {Last("val_loss", "F3")}, {Last("tokens_per_second", "N0")} tok/s"));

        var evals = ledger.Evaluations.Evals(trainingRun);
        var checkpoints = evals.Select(e => e.Checkpoint).Distinct().Count();
        var valLoss = evals.LastOrDefault(e => e.Metric == "loss" && e.Task == "validation");
        rows.Add(new StageRow("evaluate", "checkpoints", checkpoints, null, null, null,
            $"{evals.Select(e => (e.Checkpoint, e.Task)).Distinct().Count():N0} scores" + (valLoss is null ? "" : $", val loss {valLoss.Value:F3} at step {valLoss.Step:N0}")));

        // The alignment phase: a row per run it makes (the fine-tune, the reward model, the RL policy), with its job's state and last figures.
        foreach (var made in derived ?? [])
        {
            var job = ledger.Jobs.List(JobKinds.Alignment, made.Run + ":").FirstOrDefault();
            var scored = ledger.Evaluations.Evals(made.Run);
            var figures = ledger.Evaluations.Metrics(made.Run, EvaluationStore.AlignmentKind);
            var last = figures.Count == 0 ? 0 : figures.Max(m => m.Step);
            string Figure(string name, string label) => figures.LastOrDefault(m => m.Name == name) is { Name: not null } m ? $", {label} {m.Value.ToString("F3", CultureInfo.InvariantCulture)}" : "";
            rows.Add(new StageRow(made.Method, "steps", last, null, null, null,
                $"{made.Run}: {job?.State.Name() ?? $"waiting for {made.From}"}{Figure("loss", "loss")}{Figure("reward", "reward")}{Figure("kl", "KL")}" +
                (scored.Count > 0 ? $", {scored.Select(e => e.Task).Distinct().Count()} tasks scored" : "")));
        }
        return rows;
    }

    private long ProcessedCount(string stage) => ledger.Artifacts.ProcessedCount(runId, stage);

    private StageRow Row(DateTime now, string stage, string unit, long done, long? total, string detail)
    {
        double? rate = null;
        TimeSpan? eta = null;
        if (done > 0 && !_first.ContainsKey(stage)) _first[stage] = (now, done);
        if (_first.TryGetValue(stage, out var first) && done > first.Done && now > first.At)
        {
            rate = (done - first.Done) / (now - first.At).TotalSeconds;
            if (total is { } t && t > done) eta = TimeSpan.FromSeconds(Math.Ceiling((t - done) / rate.Value));
        }
        return new StageRow(stage, unit, done, total, rate, eta, detail);
    }

    /// <summary>A row as one plain line (logs, pipes, NO_COLOR).</summary>
    public static string PlainLine(StageRow row)
    {
        var count = row.Total is { } total ? $"{row.Done:N0}/{total:N0} {row.Unit} ({row.Fraction * 100:F0}%)" : $"{row.Done:N0} {row.Unit}";
        var rate = row.Rate is { } r ? $", {r:N1}/s" : "";
        var eta = row.Eta is { } e ? $", {Duration(e)} left" : "";
        return $"{row.Stage}: {count}{rate}{eta}; {row.Detail}";
    }

    public static string Duration(TimeSpan span) =>
        span.TotalHours >= 1 ? $"{(int)span.TotalHours}h{span.Minutes:D2}m" : span.TotalMinutes >= 1 ? $"{span.Minutes}m{span.Seconds:D2}s" : $"{span.Seconds}s";
}
