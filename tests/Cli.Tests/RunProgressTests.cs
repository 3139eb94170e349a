using Pipeline.Contracts.V1;
using Pipeline.Runtime;

namespace Pipeline.Cli.Tests;

public sealed class RunProgressTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("progress-").FullName;

    private static ShardRef Shard(string stage, int n, long rows) =>
        new($"{stage}-{n}", $"shards/{stage}/r/{n}.parquet", "sha", rows, rows * 1000, stage, "c", [], "r");

    [Fact]
    public void Rows_follow_the_pipeline_with_totals_rates_and_time_left_and_plain_lines_only_when_something_changed()
    {
        var ledger = new Ledger(Path.Combine(_root, "ledger.db"));
        ledger.Runs.Ensure("r", "r-gpt", "{}");
        var progress = new RunProgress(ledger, "r", "r-gpt", maxPages: 400, maxSteps: 100,
            [new DerivedRun("r-gpt-sft-from-100", "sft", "r-gpt", 100, 100), new DerivedRun("r-gpt-sft-from-100-ppo-from-10", "ppo", "r-gpt-sft-from-100", 10, 110)]);
        var t0 = new DateTime(2026, 12, 2, 0, 0, 0, DateTimeKind.Utc);

        ledger.Artifacts.CompleteInput("crawl", "crawl-1", "r", [Shard("crawl", 1, 100)]);
        ledger.Artifacts.CompleteInput("clean", "crawl-1", "r", [Shard("clean", 1, 80)]);
        var first = progress.Read(t0);
        Assert.Equal(["crawl", "clean", "dedup", "tokenize", "train", "evaluate", "sft", "ppo"], first.Select(r => r.Stage));
        Assert.Equal((100L, (long?)400), (first[0].Done, first[0].Total));
        Assert.Null(first[0].Rate);
        Assert.Null(first[1].Total); // the crawl is still going: clean's total is not known yet

        // Ten seconds later: 100 more pages (10 pages/s), so 200 left take 20 s; the crawl then finishes.
        ledger.Artifacts.CompleteInput("crawl", "crawl-2", "r", [Shard("crawl", 2, 100)]);
        for (var step = 10; step <= 40; step += 10)
        {
            ledger.Evaluations.AddMetric("r-gpt", "train", step, "loss", 5.0 - step / 100.0);
            ledger.Evaluations.AddMetric("r-gpt", "train", step, "tokens_per_second", 1234);
        }
        var second = progress.Read(t0.AddSeconds(10));
        Assert.Equal(10, second[0].Rate!.Value, 6);
        Assert.Equal(TimeSpan.FromSeconds(20), second[0].Eta);
        Assert.Equal((40L, (long?)100), (second[4].Done, second[4].Total));
        Assert.Equal("loss 4.600, val -, 1,234 tok/s", second[4].Detail);
        Assert.Equal("crawl: 200/400 pages (50%), 10.0/s, 20s left; 2 shards, 0.2 MB", RunProgress.PlainLine(second[0]));
        Assert.Equal("r-gpt-sft-from-100: waiting for r-gpt step 100", second[6].Detail);
        // An RL job's last figures, as the trainer service records them.
        ledger.Evaluations.AddMetric("r-gpt-sft-from-100-ppo-from-10", EvaluationStore.AlignmentKind, 3, "reward", 0.25);
        ledger.Evaluations.AddMetric("r-gpt-sft-from-100-ppo-from-10", EvaluationStore.AlignmentKind, 3, "kl", 0.5);
        Assert.Equal("r-gpt-sft-from-100-ppo-from-10: waiting for r-gpt-sft-from-100 step 10, reward 0.250, KL 0.500", progress.Read(t0.AddSeconds(10))[7].Detail);

        // The crawl job's live counters: pages fetched before their shard is committed count too.
        ledger.Documents.Set(LedgerKeys.CrawlProgress("r"), "{\"Fetched\":260,\"Failed\":3,\"Queued\":40,\"Shards\":2}");
        ledger.Documents.Set(LedgerKeys.CrawlProgress("r2"), "{\"Fetched\":900,\"Failed\":0,\"Queued\":0,\"Shards\":0}"); // another run
        Assert.Equal(260, progress.Read(t0.AddSeconds(10.5))[0].Done);

        ledger.Documents.Set(LedgerKeys.CrawlSummary("r"), "{}");
        var finished = progress.Read(t0.AddSeconds(11));
        Assert.Equal((200L, (long?)200), (finished[0].Done, finished[0].Total)); // a crawl that ended below the limit is whole
        Assert.Equal((1L, (long?)2), (finished[1].Done, finished[1].Total));
        Assert.Null(finished[2].Total); // clean has not finished, so dedup's total still grows

        // Plain output: every row once, then only the rows that changed.
        var display = new RunProgressDisplay(progress, "runs/x", new StringWriter());
        var output = new StringWriter();
        display.PrintChanged(output);
        Assert.Equal(8, Lines(output).Length);
        ledger.Evaluations.AddMetric("r-gpt", "train", 50, "loss", 4.5);
        output.GetStringBuilder().Clear();
        display.PrintChanged(output);
        var line = Assert.Single(Lines(output));
        Assert.StartsWith("progress train: 50/100 steps (50%)", line);
        Assert.DoesNotContain('\x1b', line);
    }

    private static string[] Lines(StringWriter output) => output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
