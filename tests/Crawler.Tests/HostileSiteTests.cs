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

    private Task<(CrawlSummary Summary, List<string> Paths)> CrawlAsync(CrawlOptions options, params string[] seeds) =>
        CrawlRunAsync("t", options, seeds);

    private async Task<(CrawlSummary Summary, List<string> Paths)> CrawlRunAsync(string runId, CrawlOptions options, params string[] seeds)
    {
        var store = new ShardStore(_root);
        var shards = new List<ShardRef>();
        var summary = await new WebCrawler(options, store, NullLogger.Instance).RunAsync(runId, seeds, s => { shards.Add(s); return Task.CompletedTask; }, CancellationToken.None);
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
    // IPv6 forms of IPv4 addresses are judged as the IPv4 address they reach (#26).
    [InlineData("64:ff9b::7f00:1", new string[0], false)]
    [InlineData("64:ff9b::a9fe:a9fe", new[] { "::/0" }, false)]
    [InlineData("64:ff9b::5db8:d822", new string[0], true)]
    [InlineData("64:ff9b:1::a00:1", new string[0], false)]
    [InlineData("2002:7f00:1::1", new string[0], false)]
    [InlineData("2002:a9fe:a9fe::", new[] { "0.0.0.0/0" }, false)]
    [InlineData("2002:5db8:d822::1", new string[0], true)]
    [InlineData("::127.0.0.1", new string[0], false)]
    [InlineData("::10.0.0.1", new string[0], false)]
    [InlineData("::ffff:0:127.0.0.1", new string[0], false)]
    [InlineData("::ffff:0:10.1.2.3", new[] { "10.0.0.0/8" }, true)]
    [InlineData("2001:0:4136:e378:8000:63bf:80ff:fffe", new string[0], false)] // Teredo, client 127.0.0.1
    [InlineData("2001:db8::1", new string[0], false)]
    [InlineData("2606:4700::1111", new string[0], true)]
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

    [Fact]
    public async Task An_ipv6_literal_link_costs_only_that_link_and_an_ipv6_seed_is_crawled()
    {
        // Regression (#26): a link to http://[::1]:8080/ threw "Invalid URI" and lost the page and all its links.
        await using var site = await StaticSite.StartAsync(_root, app =>
        {
            app.MapGet("/", () => Results.Content("<a href='http://[::1]:9/x'>v6</a><a href='/a.html'>a</a><a href='http://[fe80::1%25eth0]/'>z</a>", "text/html"));
            app.MapGet("/a.html", () => Results.Content("<p>page a</p>", "text/html"));
        });
        var (summary, paths) = await CrawlAsync(Loopback(), site.Address.ToString());
        Assert.Equal(["/", "/a.html"], paths);

        await using var v6 = await StaticSite.StartAsync(_root, app =>
        {
            app.MapGet("/", () => Results.Content("<a href='/b.html'>b</a>", "text/html"));
            app.MapGet("/b.html", () => Results.Content("<p>page b</p>", "text/html"));
        }, host: "[::1]");
        Assert.Equal("[::1]", v6.Address.Host);
        var options = Loopback();
        options.AllowedAddressRanges = ["::1/128"];
        var (_, v6Paths) = await CrawlRunAsync("v6", options, v6.Address.ToString());
        Assert.Equal(["/", "/b.html"], v6Paths);
    }

    [Fact]
    public async Task A_chain_of_sitemap_indexes_queues_no_more_than_the_crawl_can_fetch()
    {
        // Regression (#26): sitemap indexes naming sitemaps naming thousands of pages queued them all for --max-pages 5.
        var sitemapsRead = 0;
        await using var site = await StaticSite.StartAsync(_root, app =>
        {
            app.MapGet("/", () => Results.Content("<p>home</p>", "text/html"));
            app.MapGet("/sitemap.xml", () => Index(0));
            app.MapGet("/index-{n:int}.xml", (int n) => Index(n));
            app.MapGet("/pages-{n:int}.xml", (int n) =>
            {
                Interlocked.Increment(ref sitemapsRead);
                return Results.Content("<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>" +
                    string.Concat(Enumerable.Range(0, 5000).Select(i => $"<url><loc>/page/{n}-{i}</loc></url>")) + "</urlset>", "application/xml");
            });
            app.MapGet("/page/{page}", (string page) => Results.Content($"<p>{page}</p>", "text/html"));

            IResult Index(int n)
            {
                Interlocked.Increment(ref sitemapsRead);
                return Results.Content("<sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>" +
                    string.Concat(Enumerable.Range(0, 50).Select(i => $"<sitemap><loc>/pages-{n * 50 + i}.xml</loc></sitemap>")) +
                    $"<sitemap><loc>/index-{n + 1}.xml</loc></sitemap></sitemapindex>", "application/xml");
            }
        });
        var options = Loopback();
        options.MaxPages = 5;
        var (summary, paths) = await CrawlAsync(options, site.Address.ToString());
        Assert.Equal(5, summary.Pages);
        var known = summary.ByState.Values.Sum();
        Assert.True(known <= 2 * options.MaxPages, $"{known} URLs known to the frontier: {string.Join(",", summary.ByState)}");
        Assert.True(sitemapsRead <= 3, $"{sitemapsRead} sitemaps read");
    }

    [Fact]
    public async Task The_largest_body_limit_fetches_pages_with_buffers_sized_by_the_body()
    {
        // Regression (#26): every fetch allocated MaxBodyBytes + 1 up front, so int.MaxValue failed every fetch (and
        // 1 GB took 1 GB per fetch of a 2 KB page).
        await using var site = await StaticSite.StartAsync(_root, app =>
        {
            app.MapGet("/", () => Results.Content("<a href='/a.html'>a</a><a href='/big.html'>b</a>", "text/html"));
            app.MapGet("/a.html", () => Results.Content("<p>page a</p>", "text/html"));
            app.MapGet("/big.html", () => Results.Content("<p>" + new string('x', 300_000) + "</p>", "text/html"));
        });
        var options = Loopback();
        options.MaxBodyBytes = int.MaxValue;
        var (_, paths) = await CrawlAsync(options, site.Address.ToString());
        Assert.Equal(["/", "/a.html", "/big.html"], paths);

        // Just under and over the limit: a body of exactly the limit is whole, one byte more is truncated.
        options.MaxBodyBytes = 300_007; // "<p>" + 300,000 + "</p>"
        using var fetcher = new PageFetcher(options);
        var whole = await fetcher.FetchAsync(site.Address + "big.html", _ => null, CancellationToken.None);
        Assert.False(whole.Truncated);
        Assert.Equal(300_007, whole.Body!.Length);
        options.MaxBodyBytes = 300_006;
        using var smaller = new PageFetcher(options);
        var cut = await smaller.FetchAsync(site.Address + "big.html", _ => null, CancellationToken.None);
        Assert.True(cut.Truncated);
        Assert.Equal(300_006, cut.Body!.Length);
    }

    public void Dispose() => Directory.Delete(_root, true);
}
