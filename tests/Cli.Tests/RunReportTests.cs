using System.Text.Json;
using Pipeline.Cleaner;
using Pipeline.Contracts.V1;
using Pipeline.Crawler;
using Pipeline.Runtime;

namespace Pipeline.Cli.Tests;

public sealed class RunReportTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("report-").FullName;

    [Fact]
    public void The_report_has_tables_in_pipeline_order_a_wide_evaluation_table_and_an_html_copy_with_the_plots_inline()
    {
        var ledger = new Ledger(Path.Combine(_root, "ledger.db"));
        ledger.Runs.Ensure("r", "r-gpt", "{}");
        ledger.Documents.Set(LedgerKeys.CrawlSummary("r"), JsonSerializer.Serialize(new CrawlSummary(120, 2,
            new Dictionary<string, int> { ["done"] = 120, ["skipped"] = 7 }, new Dictionary<string, int> { ["robots"] = 5, ["http-404"] = 2 })));
        // Two shards whose removals were counted in different orders: the table follows the cleaner's order.
        var order = new List<string> { "empty", "language", "gopher_repetition", "gopher_quality", "exact_dedup" };
        var first = new CleanReport { RemovalOrder = order, Input = 60, Kept = 50 };
        first.Remove("exact_dedup", 10);
        first.Remove("gopher_quality", 10);
        var second = new CleanReport { RemovalOrder = order, Input = 60, Kept = 55 };
        second.Remove("language", 5);
        second.Remove("gopher_repetition", 5);
        ledger.Artifacts.CompleteInput(ShardCleaner.Stage, "a", "r", [], first);
        ledger.Artifacts.CompleteInput(ShardCleaner.Stage, "b", "r", [], second);
        for (var step = 10; step <= 100; step += 10) ledger.Evaluations.AddMetric("r-gpt", "train", step, "loss", 6 - step / 50.0);
        foreach (var (run, step, acc) in new[] { ("r-gpt", 50L, 0.30), ("r-gpt", 100L, 0.40), ("r-gpt-sft-from-100", 20L, 0.45) })
        {
            ledger.Evaluations.AddEval(run, step, $"checkpoints/{run}/step-{step:D7}", "jcommonsenseqa", "1",
                new Dictionary<string, double> { ["acc"] = acc, ["acc_stderr"] = 0.05, ["examples"] = 100, ["chance"] = 0.2 });
            ledger.Evaluations.AddEval(run, step, $"checkpoints/{run}/step-{step:D7}", "validation_perplexity", "1", new Dictionary<string, double> { ["loss"] = 5 - acc });
        }

        var folder = Path.Combine(_root, "reports");
        // The alignment phase: SFT of step 100, then PPO of the SFT model (its figures per step, as the trainer service records them).
        const string ppo = "r-gpt-sft-from-100-ppo-from-20";
        for (var step = 1; step <= 30; step++)
            foreach (var (name, value) in new[] { ("loss", 0.5 - step / 100.0), ("reward", 0.1 + step / 100.0), ("kl", step / 10.0), ("kl_coefficient", 0.05), ("entropy", 3.0), ("clip_fraction", 0.1), ("completion_length", 12.0) })
                ledger.Evaluations.AddMetric(ppo, EvaluationStore.AlignmentKind, step, name, value);
        DerivedRun[] derived = [new("r-gpt-sft-from-100", "sft", "r-gpt", 100, 100), new(ppo, "ppo", "r-gpt-sft-from-100", 20, 120)];
        var report = File.ReadAllText(RunReport.Write(ledger, "r", "r-gpt", folder, derived));

        Assert.Contains("| 120 | 2 | 0 | 0 |", report);
        Assert.Contains("| robots | 5 |", report);
        var rules = report.Split('\n').SkipWhile(l => !l.StartsWith("| rule", StringComparison.Ordinal)).Skip(2).TakeWhile(l => l.StartsWith('|'))
            .Select(l => l.Split('|')[1].Trim()).ToList();
        Assert.Equal(["language", "gopher_repetition", "gopher_quality", "exact_dedup"], rules);

        Assert.Contains("| checkpoint | validation_perplexity<br>loss | jcommonsenseqa<br>acc |", report);
        Assert.Contains("| *examples (n)* |  | 100 |", report);
        Assert.Contains("| *chance* |  | 0.2000 |", report);
        Assert.Contains("| r-gpt step 50 | 4.7000 | 0.3000 ± 0.0500 |", report);
        Assert.Contains("| r-gpt-sft-from-100 step 20 (from r-gpt step 100) | 4.5500 | 0.4500 ± 0.0500 |", report);
        Assert.Contains("## Alignment", report);
        Assert.Contains($"| {ppo} | ppo | r-gpt-sft-from-100 step 20 | not started | 30 | 0.4900 → 0.2000 |", report);
        Assert.Contains("| step | reward | kl | kl coefficient | entropy | clip fraction | completion length |", report);
        Assert.Contains("| 1 | 0.1100 | 0.1000 | 0.0500 | 3 | 0.1000 | 12 |", report);
        Assert.Contains("| 30 | 0.4000 | 3 | 0.0500 | 3 | 0.1000 | 12 |", report);
        Assert.True(File.Exists(Path.Combine(folder, $"{ppo}-rl.png")));
        Assert.DoesNotContain("examples<br>", report);
        Assert.True(File.Exists(Path.Combine(folder, "jcommonsenseqa-acc.png")));
        Assert.Contains("![loss](r-gpt-loss.png)", report);

        var html = File.ReadAllText(Path.Combine(folder, "report.html"));
        Assert.Contains("<table>", html);
        Assert.Contains("<td>r-gpt step 50</td>", html);
        Assert.Contains("src=\"data:image/png;base64,", html);
        Assert.DoesNotContain("src=\"r-gpt-loss.png\"", html);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
