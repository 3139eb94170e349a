using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Crawler;
using Pipeline.Storage;

namespace Pipeline.Bench;

/// <summary>
/// Live crawl against a local server with politeness off: pages of about 20 KB (real Debian Reference text), each
/// linking to ten others. Shows that the crawler itself is not the bottleneck. Arguments: pages, concurrency.
/// </summary>
public static class CrawlBench
{
    public static async Task RunAsync(string[] args)
    {
        var count = args.Length > 0 ? int.Parse(args[0]) : 5000;
        var concurrency = args.Length > 1 ? int.Parse(args[1]) : 32;
        var site = Directory.CreateTempSubdirectory("crawl-bench-site-").FullName;
        var text = string.Concat(Directory.GetFiles("/usr/share/debian-reference", "*.en.html").Select(File.ReadAllText));
        var random = new Random(1);
        for (var i = 0; i < count; i++)
        {
            var start = random.Next(text.Length - 20_000);
            var body = System.Net.WebUtility.HtmlEncode(text.Substring(start, 19_000));
            var links = string.Concat(Enumerable.Range(1, 10).Select(k => $"<a href=\"/p{(i * 10 + k) % count}.html\">next {k}</a> "));
            File.WriteAllText(Path.Combine(site, $"p{i}.html"), $"<html lang=\"en\"><head><title>page {i}</title></head><body><p>{body}</p>{links}</body></html>");
        }
        File.Copy(Path.Combine(site, "p0.html"), Path.Combine(site, "index.html"));
        await using var server = await StaticSite.StartAsync(site);
        var options = new CrawlOptions
        {
            AllowedAddressRanges = ["127.0.0.0/8"], PerHostConcurrency = concurrency, GlobalConcurrency = concurrency, PerHostDelay = TimeSpan.Zero,
            MaxPages = count, MaxDepth = 1000, PagesPerShard = 1000,
        };
        var data = Directory.CreateTempSubdirectory("crawl-bench-data-").FullName;
        var crawler = new WebCrawler(options, new ShardStore(data), NullLogger.Instance);
        var watch = Stopwatch.StartNew();
        var summary = await crawler.RunAsync("bench", [server.Address + "index.html"], _ => Task.CompletedTask, default);
        var seconds = watch.Elapsed.TotalSeconds;
        Console.WriteLine($"crawl: {summary.Pages:N0} pages of ~20 KB in {seconds:F1} s = {summary.Pages / seconds:F0} pages/s " +
                          $"({crawler.Progress.Bytes / 1e6 / seconds:F1} MB/s), concurrency {concurrency}, {Environment.ProcessorCount} cores (server in the same process)");
        Directory.Delete(site, true);
        Directory.Delete(data, true);
    }
}
