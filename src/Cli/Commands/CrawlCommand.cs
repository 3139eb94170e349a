using System.CommandLine;
using System.Diagnostics;
using Pipeline.Contracts.V1;
using Pipeline.Crawler;
using Pipeline.Crawler.Warc;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;
using Spectre.Console;

namespace Pipeline.Cli.Commands;

/// <summary>`pipeline crawl`: a live crawl from seeds or sitemaps, or WARC/WET ingestion, into raw-page shards.</summary>
public static class CrawlCommand
{
    public static Command Create(Option<string> outOption, Option<string> runOption, Option<string[]> setOption)
    {
        var seeds = new Option<string[]>("--seed") { Description = "Seed URL (repeatable)", AllowMultipleArgumentsPerToken = true };
        var seedsFile = new Option<string?>("--seeds-file") { Description = "File with one seed URL per line" };
        var warc = new Option<string[]>("--warc") { Description = "WARC or WET file(s) to ingest (.warc, .warc.gz)", AllowMultipleArgumentsPerToken = true };
        var maxPages = new Option<int>("--max-pages") { Description = "Stop the crawl after this many pages (0 = Pipeline:Crawler:MaxPages)" };
        var command = new Command("crawl", "Crawl the web from seeds, or ingest WARC files, into raw-page shards under --out (resumes when run again)")
        {
            seeds, seedsFile, warc, maxPages, outOption, runOption, setOption,
        };
        command.SetAction(async (parse, ct) =>
        {
            var outDir = CliInputs.OutDir(parse.GetValue(outOption)!);
            var runId = parse.GetValue(runOption)!;
            var context = PipelineContext.Open(outDir, CliInputs.Settings(parse.GetValue(setOption)));
            var options = context.Section<CrawlOptions>(CrawlOptions.Section);
            if (parse.GetValue(maxPages) > 0) options.MaxPages = parse.GetValue(maxPages);
            var seedList = (parse.GetValue(seeds) ?? []).ToList();
            if (parse.GetValue(seedsFile) is { } file)
            {
                if (!File.Exists(file)) throw new ArgumentException($"--seeds-file '{file}' does not exist");
                seedList.AddRange(File.ReadAllLines(file).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')));
            }
            var warcFiles = parse.GetValue(warc) ?? [];
            if (seedList.Count == 0 && warcFiles.Length == 0) throw new ArgumentException("give --seed, --seeds-file or --warc");

            var (store, ledger) = (context.Store, context.Ledger);
            ledger.Runs.Ensure(runId, runId, "{}");
            using var logging = PipelineContext.Logging(quiet: StageProgress.Interactive);
            var logger = logging.CreateLogger("crawl");
            var step = new ShardStep(ledger, WebCrawler.Stage);
            Task OnShard(ShardRef shard) => step.RecordSourceAsync(shard, () => Task.CompletedTask);

            if (warcFiles.Length > 0)
            {
                var ingester = new WarcIngester(options, store, ledger, logger);
                var status = new StatusLine(TimeSpan.FromSeconds(10));
                var summary = await ingester.IngestAsync(runId, warcFiles, OnShard, ct,
                    new Progress<WarcSummary>(s => status.Show($"warc: {s.Records:N0} records, {s.Pages:N0} pages, {s.Bytes / 1e6:F1} MB, {s.Shards} shards")));
                status.End();
                var table = new Table().AddColumns("records", "pages", "shards", "MB", "MB/s", "records/s");
                table.AddRow(summary.Records.ToString("N0"), summary.Pages.ToString("N0"), summary.Shards.ToString(), (summary.Bytes / 1e6).ToString("F1"),
                    (summary.Bytes / 1e6 / Math.Max(summary.Seconds, 1e-9)).ToString("F1"), (summary.Records / Math.Max(summary.Seconds, 1e-9)).ToString("F0"));
                AnsiConsole.Write(table);
                Reasons("skipped", summary.Skipped.ToDictionary(kv => kv.Key, kv => (int)kv.Value));
                foreach (var error in summary.Errors.Take(10)) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(error)}[/]");
            }
            if (seedList.Count > 0)
            {
                var crawler = new WebCrawler(options, store, logger);
                var watch = Stopwatch.StartNew();
                using var stop = new CancellationTokenSource();
                var status = new StatusLine(TimeSpan.FromSeconds(10));
                var display = Task.Run(async () =>
                {
                    while (!stop.IsCancellationRequested)
                    {
                        var p = crawler.Progress;
                        status.Show($"crawl: {p.Fetched:N0} fetched, {p.Queued:N0} queued, {p.Failed:N0} failed, {p.Bytes / 1e6:F1} MB, {p.Fetched / Math.Max(watch.Elapsed.TotalSeconds, 1e-9):F1} pages/s, {p.Shards} shards");
                        try { await Task.Delay(500, stop.Token); } catch (OperationCanceledException) { }
                    }
                });
                var summary = await crawler.RunAsync(runId, seedList, OnShard, ct);
                await stop.CancelAsync();
                await display;
                status.End();
                ledger.Documents.Set(LedgerKeys.CrawlSummary(runId), System.Text.Json.JsonSerializer.Serialize(summary));
                AnsiConsole.MarkupLine($"[green]crawl[/]: {summary.Pages:N0} pages in {summary.Shards} shards, {watch.Elapsed.TotalSeconds:F1} s; " +
                    $"{summary.Retries:N0} requests retried, {summary.Requeued:N0} failed URLs tried again");
                Reasons("by state", summary.ByState);
                Reasons("by reason", summary.ByReason);
            }
            // A crawl that stored nothing (every seed refused, unreachable or disallowed) is a failure, not a success.
            if (ledger.Artifacts.Shards(runId, WebCrawler.Stage).Sum(s => s.Rows) == 0)
                throw new InvalidOperationException("crawl: no page was stored; see the reasons above");
            return 0;
        });
        return command;
    }

    private static void Reasons(string title, IReadOnlyDictionary<string, int> counts)
    {
        if (counts.Count == 0) return;
        var table = new Table().AddColumns(title, "count");
        foreach (var (k, v) in counts.OrderByDescending(kv => kv.Value)) table.AddRow(Markup.Escape(k), v.ToString("N0"));
        AnsiConsole.Write(table);
    }
}
