using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Contracts.V1;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;

namespace Pipeline.Crawler.Tests;

/// <summary>
/// Sites and settings that try to stop a crawl or make it reach what the user did not allow. Every server here is a
/// loopback server of the test's own; the link-local address is only ever refused, never dialled.
/// </summary>
public sealed class HostileSiteTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("hostile-").FullName;

    private static CrawlOptions Loopback() => new() { AllowedAddressRanges = ["127.0.0.0/8"], PerHostDelay = TimeSpan.Zero };

    private async Task<(CrawlSummary Summary, List<string> Paths)> CrawlAsync(CrawlOptions options, params string[] seeds)
    {
        var store = new ShardStore(_root);
        var shards = new List<ShardRef>();
        var summary = await new WebCrawler(options, store, NullLogger.Instance).RunAsync("t", seeds, s => { shards.Add(s); return Task.CompletedTask; }, CancellationToken.None);
        var paths = new List<string>();
        foreach (var shard in shards) paths.AddRange((await store.ReadParquetAsync<RawPage>(shard)).Select(p => new Uri(p.Url).AbsolutePath));
        return (summary, paths.Distinct().Order().ToList());
    }

    [Fact]
    public async Task Robots_and_sitemaps_redirecting_to_file_urls_are_recorded_and_the_crawl_goes_on()
    {
        // Regression: a robots.txt or sitemap.xml redirecting to file:/// killed the whole crawl (and its resume).
        await using var site = await StaticSite.StartAsync(_root, app =>
        {
            app.MapGet("/robots.txt", () => Results.Redirect("file:///etc/passwd"));
            app.MapGet("/sitemap.xml", () => Results.Redirect("file:///etc/hostname"));
            app.MapGet("/", () => Results.Content("<a href='/a.html'>a</a><a href='file:///etc/shadow'>f</a><a href='/to-file'>t</a>", "text/html"));
            app.MapGet("/a.html", () => Results.Content("<p>page a</p>", "text/html"));
            app.MapGet("/to-file", () => Results.Redirect("file:///etc/passwd"));
        });
        var (summary, paths) = await CrawlAsync(Loopback(), site.Address.ToString());
        Assert.Equal(["/", "/a.html"], paths);
        // Reasons are counted by kind (the part before the first ':'; the frontier keeps the rest, here "scheme").
        Assert.Equal(1, summary.ByReason["robots-redirect-refused"]);
        Assert.Equal(1, summary.ByReason["sitemap-redirect-refused"]);
        Assert.Equal(1, summary.ByReason["scheme"]); // the file:/// link
        Assert.Equal(1, summary.ByReason["redirect-refused"]); // the page that redirects to file:///

        // The resumed crawl reads the same robots.txt and sitemap again, and survives them again.
        var (again, _) = await CrawlAsync(Loopback(), site.Address.ToString());
        Assert.Equal(summary.Pages, again.Pages);
    }

    [Fact]
    public async Task Redirects_of_robots_and_sitemaps_pass_the_scope_check()
    {
        // Regression: robots.txt and sitemap fetches followed redirects to any host.
        var outsideHits = 0;
        await using var outside = await StaticSite.StartAsync(_root, app =>
            app.MapGet("/{**path}", () =>
            {
                Interlocked.Increment(ref outsideHits);
                return Results.Content("User-agent: *\nDisallow: /\n", "text/plain");
            }));
        // "localhost" is not the seed's host (127.0.0.1), so it is out of scope though the address is allowed.
        var elsewhere = $"http://localhost:{outside.Address.Port}";
        await using var site = await StaticSite.StartAsync(_root, app =>
        {
            app.MapGet("/robots.txt", () => Results.Redirect(elsewhere + "/robots.txt"));
            app.MapGet("/sitemap.xml", () => Results.Redirect(elsewhere + "/sitemap.xml"));
            app.MapGet("/", () => Results.Content("<p>home</p>", "text/html"));
        });
        var (summary, paths) = await CrawlAsync(Loopback(), site.Address.ToString());
        Assert.Equal(["/"], paths);
        Assert.Equal(0, outsideHits);
        Assert.Equal(1, summary.ByReason["robots-redirect-refused"]);
        Assert.Equal(1, summary.ByReason["sitemap-redirect-refused"]);
    }

    [Fact]
    public async Task An_allowed_loopback_crawl_cannot_be_redirected_to_the_metadata_address()
    {
        // Regression: AllowPrivateAddresses=true turned the guard off, so 169.254.169.254 was reachable by redirect.
        await using var site = await StaticSite.StartAsync(_root, app =>
        {
            app.MapGet("/", () => Results.Content("<a href='/meta'>m</a>", "text/html"));
            app.MapGet("/meta", () => Results.Redirect("http://169.254.169.254/latest/meta-data/"));
        });
        var options = Loopback();
        options.AllowedDomains = ["127.0.0.1", "169.254.169.254"]; // in scope: only the address guard stands in the way
        options.AllowedAddressRanges = ["127.0.0.0/8", "0.0.0.0/0"]; // even the widest range does not open link-local
        var (summary, paths) = await CrawlAsync(options, site.Address.ToString());
        Assert.Equal(["/"], paths);
        Assert.Equal(1, summary.ByReason.Where(r => r.Key.StartsWith("blocked-address")).Sum(r => r.Value));
    }

    [Theory]
    [InlineData("127.0.0.1", new string[0], false)]
    [InlineData("127.0.0.1", new[] { "127.0.0.0/8" }, true)]
    [InlineData("10.1.2.3", new[] { "127.0.0.0/8" }, false)]
    [InlineData("10.1.2.3", new[] { "10.0.0.0/8" }, true)]
    [InlineData("169.254.169.254", new[] { "0.0.0.0/0" }, false)]
    [InlineData("169.254.169.254", new[] { "169.0.0.0/8" }, false)]
    [InlineData("169.254.169.254", new[] { "169.254.169.254/32" }, true)]
    [InlineData("::ffff:169.254.169.254", new[] { "0.0.0.0/0" }, false)]
    [InlineData("fe80::1", new[] { "::/0" }, false)]
    [InlineData("fe80::1", new[] { "fe80::/10" }, true)]
    [InlineData("93.184.216.34", new string[0], true)]
    public void The_guard_allows_public_addresses_and_listed_ranges_only(string address, string[] ranges, bool allowed) =>
        Assert.Equal(allowed, new AddressGuard(ranges).IsAllowed(IPAddress.Parse(address)));

    [Fact]
    public void A_range_that_is_not_cidr_is_an_error_naming_it() =>
        Assert.Contains("'127.0.0.1/33'", Assert.Throws<ArgumentException>(() => new AddressGuard(["127.0.0.1/33"])).Message);

    [Fact]
    public async Task Through_a_proxy_the_target_is_checked_and_the_environment_proxy_is_never_used()
    {
        // Regression: through an HTTP proxy the guard saw only the proxy's (allowed) address.
        var proxied = new List<string>();
        await using var proxy = await StaticSite.StartAsync(_root, app => app.Run(async context =>
        {
            lock (proxied) proxied.Add(context.Request.Host.ToString());
            context.Response.ContentType = "text/html";
            await context.Response.WriteAsync("<p>via proxy</p>");
        }));
        await using var site = await StaticSite.StartAsync(_root, app => app.MapGet("/", () => Results.Content("<p>direct</p>", "text/html")));

        var options = new CrawlOptions { Proxy = proxy.Address.ToString() };
        using (var fetcher = new PageFetcher(options))
        {
            var metadata = await fetcher.FetchAsync("http://169.254.169.254/latest/", _ => null, CancellationToken.None);
            Assert.StartsWith("blocked-address", metadata.SkipReason);
            var loopbackTarget = await fetcher.FetchAsync(site.Address.ToString(), _ => null, CancellationToken.None);
            Assert.StartsWith("blocked-address", loopbackTarget.SkipReason); // the target is loopback, not allowed
            Assert.Empty(proxied);
        }
        options.AllowedAddressRanges = ["127.0.0.0/8"];
        using (var fetcher = new PageFetcher(options))
        {
            var allowed = await fetcher.FetchAsync(site.Address.ToString(), _ => null, CancellationToken.None);
            Assert.Equal("<p>via proxy</p>", System.Text.Encoding.UTF8.GetString(allowed.Body!));
            Assert.Single(proxied);
        }

        // The environment's proxy variables are ignored unless Pipeline:Crawler:Proxy names one.
        var before = Environment.GetEnvironmentVariable("http_proxy");
        Environment.SetEnvironmentVariable("http_proxy", proxy.Address.ToString());
        try
        {
            using var fetcher = new PageFetcher(Loopback());
            var direct = await fetcher.FetchAsync(site.Address.ToString(), _ => null, CancellationToken.None);
            Assert.Equal("<p>direct</p>", System.Text.Encoding.UTF8.GetString(direct.Body!));
            Assert.Single(proxied);
        }
        finally
        {
            Environment.SetEnvironmentVariable("http_proxy", before);
        }
    }

    [Fact]
    public async Task File_seeds_and_refused_seeds_are_recorded_under_their_own_reasons()
    {
        // Regression: a file:// seed vanished without a trace, and a seed refused by the guard was counted as "robots".
        await using var site = await StaticSite.StartAsync(_root, app => app.MapGet("/", () => Results.Content("<p>home</p>", "text/html")));
        var (summary, paths) = await CrawlAsync(new CrawlOptions { PerHostDelay = TimeSpan.Zero }, "file:///etc/passwd", site.Address.ToString());
        Assert.Empty(paths);
        Assert.Equal(1, summary.ByReason["scheme"]);
        Assert.Equal(1, summary.ByReason["blocked-address"]);
        Assert.False(summary.ByReason.ContainsKey("robots"));
    }

    [Fact]
    public async Task A_stopped_crawl_commits_what_it_fetched_and_the_resume_does_not_fetch_it_again()
    {
        // A signal stops the crawl: the pages fetched so far become a committed shard (done in the frontier).
        var hits = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        await using var site = await StaticSite.StartAsync(_root, app =>
        {
            app.MapGet("/", () => Results.Content(string.Concat(Enumerable.Range(0, 30).Select(i => $"<a href='/p{i}'>{i}</a>")), "text/html"));
            app.MapGet("/p{n}", async (string n) =>
            {
                hits.AddOrUpdate(n, 1, (_, c) => c + 1);
                await Task.Delay(100);
                return Results.Content($"<p>page {n}</p>", "text/html");
            });
        });
        var options = Loopback();
        options.PerHostConcurrency = 2;
        var store = new ShardStore(_root);
        var shards = new List<ShardRef>();
        var crawler = new WebCrawler(options, store, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var crawl = crawler.RunAsync("stop", [site.Address.ToString()], s => { shards.Add(s); return Task.CompletedTask; }, stop.Token);
        while (crawler.Progress.Fetched < 6) await Task.Delay(20);
        stop.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => crawl);
        var first = Assert.Single(shards);
        Assert.True(first.Rows >= 6, $"{first.Rows} pages committed");

        var summary = await new WebCrawler(options, store, NullLogger.Instance).RunAsync("stop", [site.Address.ToString()], s => { shards.Add(s); return Task.CompletedTask; }, CancellationToken.None);
        Assert.Equal(31, summary.Pages);
        var urls = new List<string>();
        foreach (var shard in shards.DistinctBy(s => s.ShardId)) urls.AddRange((await store.ReadParquetAsync<RawPage>(shard)).Select(p => p.Url));
        Assert.Equal(31, urls.Distinct().Count());
        // Pages committed before the stop were not fetched again (a page in flight at the stop may be fetched twice).
        Assert.True(hits.Values.Count(c => c > 1) <= options.PerHostConcurrency, string.Join(",", hits.Where(h => h.Value > 1).Select(h => h.Key)));
    }

    [Fact]
    public async Task Connection_resets_and_server_errors_are_retried_and_failures_are_tried_again_on_resume()
    {
        // Regression: one connection error lost a page for good; only 429 and 503 were retried, never a failed URL.
        var resets = 0;
        var errors = 0;
        await using var site = await StaticSite.StartAsync(_root, app =>
        {
            app.MapGet("/", () => Results.Content("<a href='/flaky'>f</a><a href='/down'>d</a><a href='/gone'>g</a>", "text/html"));
            app.MapGet("/flaky", (HttpContext context) =>
            {
                if (Interlocked.Increment(ref resets) <= 2)
                {
                    context.Abort(); // the connection is reset
                    return Results.Empty;
                }
                return Results.Content("<p>third time</p>", "text/html");
            });
            // 502 for the first five requests: more than one run's retries (1 + MaxRetries 2), fewer than two runs'.
            app.MapGet("/down", () => Interlocked.Increment(ref errors) <= 5 ? Results.StatusCode(502) : Results.Content("<p>back</p>", "text/html"));
            app.MapGet("/gone", () => Results.StatusCode(404));
        });
        var options = Loopback();
        options.MaxRetries = 2;
        options.MaxRetryAfter = TimeSpan.FromMilliseconds(200);
        var (first, paths) = await CrawlAsync(options, site.Address.ToString());
        Assert.Equal(["/", "/flaky"], paths);
        Assert.Equal(3, resets);
        Assert.Equal(1, first.ByReason["http-502"]);
        Assert.True(first.Retries >= 4, $"{first.Retries} retries");

        // The resume tries the 502 page again (not the 404), and stores it.
        var (second, all) = await CrawlAsync(options, site.Address.ToString());
        Assert.Equal(1, second.Requeued);
        Assert.Equal(["/", "/down", "/flaky"], all);
        Assert.Equal(1, second.ByReason["http-404"]);
    }

    public void Dispose() => Directory.Delete(_root, true);
}
