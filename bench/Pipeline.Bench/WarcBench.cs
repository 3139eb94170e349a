using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Crawler;
using Pipeline.Crawler.Warc;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Bench;

/// <summary>
/// WARC ingestion on one core: builds a WARC of real HTML (the Debian Reference pages, repeated under distinct URLs)
/// of at least the given size, plain and per-record gzip, then reads it (records, HTTP parsing, charset decoding,
/// page signals) and ingests it fully (plus Parquet shards). Arguments: HTML folder, target MB, work folder.
/// </summary>
public static class WarcBench
{
    public static async Task RunAsync(string[] args)
    {
        var source = args.Length > 0 ? args[0] : "/usr/share/debian-reference";
        var targetMb = args.Length > 1 ? int.Parse(args[1]) : 120;
        var work = args.Length > 2 ? args[2] : Path.Combine(Path.GetTempPath(), "warc-bench");
        Directory.CreateDirectory(work);
        var pages = Directory.GetFiles(source, "*.html", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToList();
        // The first pass warms up (JIT, Parquet writer); the figures are from the second.
        foreach (var (gzip, report) in new[] { (false, false), (true, false), (false, true), (true, true) })
        {
            var path = Path.Combine(work, gzip ? "bench.warc.gz" : "bench.warc");
            if (!File.Exists(path))
            {
                using var writer = new WarcWriter(File.Create(path), gzip);
                long written = 0;
                for (var i = 0; written < targetMb * 1_000_000L; i++)
                {
                    var page = pages[i % pages.Count];
                    writer.WriteResponse($"http://bench.test/{i}.html", DateTime.UtcNow, 200, "text/html; charset=utf-8", page);
                    written += page.Length;
                }
            }
            var fileBytes = new FileInfo(path).Length;
            var options = new CrawlOptions { PagesPerShard = 1000 };
            var ingester = new WarcIngester(options, new ShardStore(work), new Ledger(Path.Combine(work, "ledger.db")), NullLogger.Instance);

            var watch = Stopwatch.StartNew();
            long records = 0, bytes = 0, pagesRead = 0;
            var summary = new WarcSummary();
            foreach (var record in new WarcReader().Read(path, _ => { }))
            {
                records++;
                bytes += record.Block.Length;
                if (ingester.ToPage(record, "bench", summary) is not null) pagesRead++;
            }
            var parse = watch.Elapsed.TotalSeconds;
            if (report) Console.WriteLine($"warc read+parse {(gzip ? ".warc.gz" : ".warc   ")}: {fileBytes / 1e6:F0} MB file, {bytes / 1e6:F0} MB of records, {records:N0} records in {parse:F1} s: " +
                              $"{bytes / 1e6 / parse:F1} MB/s of records, {fileBytes / 1e6 / parse:F1} MB/s of file, {records / parse:F0} records/s ({pagesRead:N0} pages)");

            var run = $"bench-{(gzip ? "gz" : "plain")}-{DateTime.UtcNow.Ticks}";
            watch.Restart();
            var ingested = await ingester.IngestAsync(run, [path], _ => Task.CompletedTask, default);
            var full = watch.Elapsed.TotalSeconds;
            if (report) Console.WriteLine($"warc ingest (with Parquet shards) {(gzip ? ".warc.gz" : ".warc   ")}: {ingested.Pages:N0} pages, {ingested.Shards} shards in {full:F1} s: " +
                              $"{ingested.Bytes / 1e6 / full:F1} MB/s of records, {ingested.Records / full:F0} records/s");
            Directory.Delete(Path.Combine(work, "shards"), recursive: true);
        }
    }
}
