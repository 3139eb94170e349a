using System.IO.Compression;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Contracts.V1;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;
using Pipeline.Runtime;

namespace Pipeline.Crawler.Tests;

public sealed class CrawlerTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("crawl-").FullName;

    [Fact]
    public void Robots_longest_match_wins_and_wildcards_work()
    {
        var robots = RobotsTxt.Parse("User-agent: other\nDisallow: /\n\nUser-agent: *\nDisallow: /private/\nAllow: /private/open$\nDisallow: /*.cgi\nCrawl-delay: 2\nSitemap: /s.xml\n", "PipelineBot/0.1");
        Assert.True(robots.IsAllowed("/index.html"));
        Assert.False(robots.IsAllowed("/private/x"));
        Assert.True(robots.IsAllowed("/private/open"));
        Assert.False(robots.IsAllowed("/private/open2"));
        Assert.False(robots.IsAllowed("/a/b.cgi?x=1"));
        Assert.Equal(TimeSpan.FromSeconds(2), robots.CrawlDelay);
        Assert.Equal(["/s.xml"], robots.Sitemaps);
        Assert.False(RobotsTxt.Parse("User-agent: pipelinebot\nDisallow: /\n", "PipelineBot/0.1").IsAllowed("/a"));
    }

    private static string Fixture(string file) => Path.Combine(AppContext.BaseDirectory, "fixtures", file);

    private static string Title() =>
        System.Text.RegularExpressions.Regex.Match(File.ReadAllText(Fixture("utf8-pr01-02.html")), "<title>(.*?)</title>").Groups[1].Value;

    /// <summary>A legacy page's bytes: the shipped Shift_JIS and EUC-JP pages, or the UTF-8 page encoded as ISO-2022-JP.</summary>
    private static byte[] Page(string charset, bool declared)
    {
        var encoding = System.Text.Encoding.GetEncoding(charset);
        var text = encoding.GetString(charset == "iso-2022-jp"
            ? encoding.GetBytes(File.ReadAllText(Fixture("utf8-pr01-02.html")))
            : File.ReadAllBytes(Fixture($"{charset.Replace('-', '_')}-pr01-02.html")));
        text = System.Text.RegularExpressions.Regex.Replace(text, "<meta charset=\"[^\"]*\">", declared ? $"<meta charset=\"{charset}\">" : "");
        return encoding.GetBytes(text);
    }

    [Theory]
    [InlineData("shift_jis", true, "meta")]
    [InlineData("shift_jis", false, "detected")]
    [InlineData("euc-jp", true, "meta")]
    [InlineData("euc-jp", false, "detected")]
    [InlineData("iso-2022-jp", true, "meta")]
    [InlineData("iso-2022-jp", false, "detected")]
    public void Legacy_japanese_pages_decode_with_or_without_a_declaration(string charset, bool declared, string source)
    {
        System.Text.Encoding.RegisterProvider(System.Text.CodePagesEncodingProvider.Instance);
        var (text, name, decidedBy) = CharsetDecoder.Decode(Page(charset, declared), null);
        Assert.Equal(charset, name);
        Assert.Equal(source, decidedBy);
        Assert.Contains($"<title>{Title()}</title>", text);
        Assert.DoesNotContain('\uFFFD', text);
    }

    [Fact]
    public void A_declared_encoding_wins_over_a_guess()
    {
        // Regression: a page declared UTF-8 with a few invalid bytes was re-guessed as Shift_JIS, all of it mojibake.
        var utf8 = File.ReadAllBytes(Fixture("utf8-pr01-02.html"));
        var damaged = utf8.Take(2000).Concat(new byte[] { 0x82, 0xA0, 0xFF }).Concat(utf8.Skip(2000)).ToArray();
        var (text, name, source) = CharsetDecoder.Decode(damaged, null);
        Assert.Equal(("utf-8", "meta"), (name, source));
        Assert.Contains($"<title>{Title()}</title>", text);
        Assert.Contains('\uFFFD', text);
        // The HTTP charset comes before <meta>: the Shift_JIS page served as UTF-8 is decoded as UTF-8.
        var (asHttp, httpName, httpSource) = CharsetDecoder.Decode(File.ReadAllBytes(Fixture("shift_jis-pr01-02.html")), "utf-8");
        Assert.Equal(("utf-8", "http"), (httpName, httpSource));
        Assert.Contains('\uFFFD', asHttp);
        // A byte order mark comes before both.
        var (bom, bomName, bomSource) = CharsetDecoder.Decode([0xEF, 0xBB, 0xBF, .. System.Text.Encoding.UTF8.GetBytes("日本")], "shift_jis");
        Assert.Equal(("日本", "utf-8", "bom"), (bom, bomName, bomSource));
    }

    [Fact]
    public void Normalizer_canonicalizes()
    {
        var n = new UrlNormalizer(["utm_source"]);
        Assert.Equal("http://example.com/a?b=2&c=1", n.Normalize("HTTP://Example.COM:80/a?utm_source=x&c=1&b=2#frag"));
        Assert.Null(n.Normalize("mailto:a@b.c"));
    }

    [Theory]
    [InlineData("http://[::1]:8080/a", "http://[::1]:8080/a")]
    [InlineData("HTTP://[2001:DB8::1]/x?b=1", "http://[2001:db8::1]/x?b=1")]
    [InlineData("https://[::ffff:127.0.0.1]:443/", "https://[::ffff:127.0.0.1]/")]
    public void Normalizer_keeps_ipv6_literals_usable(string url, string expected)
    {
        var normalized = new UrlNormalizer([]).Normalize(url);
        Assert.Equal(expected, normalized);
        Assert.True(Uri.TryCreate(normalized, UriKind.Absolute, out _), normalized);
    }

    [Fact]
    public void Private_addresses_are_not_public()
    {
        foreach (var ip in new[] { "127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.5.5", "169.254.1.1", "::1" })
            Assert.False(AddressGuard.IsPublic(System.Net.IPAddress.Parse(ip)), ip);
        Assert.True(AddressGuard.IsPublic(System.Net.IPAddress.Parse("93.184.216.34")));
    }

    [Fact]
    public async Task Crawl_of_a_local_site_is_polite_and_survives_bad_responses()
    {
        var site = Path.Combine(_root, "site");
        Directory.CreateDirectory(Path.Combine(site, "private"));
        File.WriteAllText(Path.Combine(site, "robots.txt"), "User-agent: *\nDisallow: /private/\n");
        File.WriteAllText(Path.Combine(site, "index.html"),
            "<html lang=en><body><a href='/a.html'>a</a><a href='/private/p.html'>p</a><a href='/missing.html'>m</a><a href='/boom'>b</a><a href='/bomb'>z</a><a href='/bin.html'>bin</a><a href='/loop1'>l</a><a href='http://10.0.0.1/x'>x</a></body></html>");
        File.WriteAllText(Path.Combine(site, "a.html"), "<html><body><p>page a <b>unclosed</p></body>");
        File.WriteAllText(Path.Combine(site, "private", "p.html"), "<p>secret</p>");
        File.WriteAllBytes(Path.Combine(site, "bin.html"), [0x00, 0x01, 0x02, 0x00, 0xFF, 0x00]);
        await using var server = await StaticSite.StartAsync(site, app =>
        {
            app.MapGet("/boom", () => Results.StatusCode(500));
            app.MapGet("/loop1", () => Results.Redirect("/loop2"));
            app.MapGet("/loop2", () => Results.Redirect("/loop1"));
            app.MapGet("/bomb", async context =>
            {
                context.Response.ContentType = "text/html";
                context.Response.Headers.ContentEncoding = "gzip";
                using var ms = new MemoryStream();
                using (var gz = new GZipStream(ms, CompressionLevel.SmallestSize, true))
                    gz.Write(new byte[50 * 1024 * 1024]);
                await context.Response.Body.WriteAsync(ms.ToArray());
            });
        });
        var options = new CrawlOptions { AllowedAddressRanges = ["127.0.0.0/8"], PerHostDelay = TimeSpan.Zero, MaxBodyBytes = 1024 * 1024, TruncateOversized = false, AllowedDomains = ["127.0.0.1", "10.0.0.1"], ArchiveWarc = true };
        var store = new ShardStore(_root);
        var shards = new List<ShardRef>();
        var crawler = new WebCrawler(options, store, NullLogger.Instance);
        var summary = await crawler.RunAsync("t", [server.Address.ToString()], s => { shards.Add(s); return Task.CompletedTask; }, CancellationToken.None);

        var pages = (await store.ReadParquetAsync<RawPage>(Assert.Single(shards))).Select(p => new Uri(p.Url).AbsolutePath).Order().ToList();
        Assert.Equal(["/", "/a.html"], pages);
        Assert.True(summary.ByReason.Count > 0, string.Join(",", summary.ByReason.Select(kv => kv.Key + "=" + kv.Value)));
        Assert.Equal(1, summary.ByReason["robots"]);
        Assert.True(summary.ByReason["http-404"] >= 1, string.Join(",", summary.ByReason.Select(kv => kv.Key + "=" + kv.Value)));
        Assert.Equal(1, summary.ByReason["http-500"]);
        Assert.Equal(1, summary.ByReason["too-large"]);
        Assert.Equal(1, summary.ByReason["binary-content"]);
        Assert.Equal(1, summary.ByReason["redirect-limit"]);
        // The archived WARC replays the same pages.
        var archived = new Warc.WarcReader().Read(store.Resolve("warc/t/crawl-00001.warc.gz"), e => Assert.Fail(e.ToString()))
            .Where(r => r.Type == "response").Select(r => new Uri(r.TargetUri!).AbsolutePath).Order().ToList();
        Assert.Equal(pages, archived);

        // Resume: a second run with the same frontier fetches nothing new and re-announces the committed shard.
        var again = new List<ShardRef>();
        var summary2 = await new WebCrawler(options, store, NullLogger.Instance).RunAsync("t", [server.Address.ToString()], s => { again.Add(s); return Task.CompletedTask; }, CancellationToken.None);
        Assert.Equal(shards.Select(s => s.Sha256), again.Select(s => s.Sha256));
        Assert.Equal(summary.Pages, summary2.Pages);
    }

    [Fact]
    [Trait("Category", "S3")]
    public async Task A_crawl_resumes_on_another_host_from_the_frontier_snapshot_in_the_object_store()
    {
        var site = Path.Combine(_root, "site");
        Directory.CreateDirectory(site);
        File.WriteAllText(Path.Combine(site, "index.html"), "<html><body>" + string.Concat(Enumerable.Range(1, 9).Select(i => $"<a href='/p{i}.html'>{i}</a>")) + "</body></html>");
        for (var i = 1; i <= 9; i++) File.WriteAllText(Path.Combine(site, $"p{i}.html"), $"<html><body><p>page {i}</p></body></html>");
        var fetches = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        await using var server = await StaticSite.StartAsync(site, app => app.Use(async (context, next) =>
        {
            fetches.AddOrUpdate(context.Request.Path, 1, (_, n) => n + 1);
            await next();
        }));
        var bucket = new Pipeline.Tests.Shared.S3TestBucket();
        using var client = new S3ObjectStore(bucket.Options(), Pipeline.Tests.Shared.S3TestBucket.Credentials);
        async Task<List<ShardRef>> CrawlOn(string host, int maxPages)
        {
            var options = new CrawlOptions { AllowedAddressRanges = ["127.0.0.0/8"], PerHostDelay = TimeSpan.Zero, PagesPerShard = 1, GlobalConcurrency = 1, MaxPages = maxPages };
            var shards = new List<ShardRef>();
            await new WebCrawler(options, new ShardStore(Path.Combine(_root, host), client), NullLogger.Instance)
                .RunAsync("t", [server.Address.ToString()], s => { shards.Add(s); return Task.CompletedTask; }, CancellationToken.None);
            return shards;
        }

        var first = await CrawlOn("a", 3);
        Assert.Equal(3, first.Count);
        // Host b has no frontier of its own: it re-announces a's shards as they were and crawls only new pages.
        var second = await CrawlOn("b", 6);
        Assert.Equal(first.Select(s => s.Sha256), second.Take(3).Select(s => s.Sha256));
        Assert.Equal(6, second.Count);
        // Back on a, whose folder holds the older frontier: the newer snapshot wins.
        var third = await CrawlOn("a", 10);
        Assert.Equal(second.Select(s => s.Sha256), third.Take(6).Select(s => s.Sha256));
        Assert.Equal(10, third.Count);
        Assert.All(Enumerable.Range(1, 9), i => Assert.Equal(1, fetches.GetValueOrDefault($"/p{i}.html")));
        Assert.Equal(1, fetches.GetValueOrDefault("/"));
    }

    [Fact]
    public async Task A_crawl_split_by_host_hands_links_across_parts_and_fetches_each_page_once()
    {
        // Two sites on loopback ports chosen so that each belongs to a different part; the seed is on site a only, so
        // every page of site b is reached through a link that part a hands to part b.
        var ports = new Dictionary<int, int>();
        while (ports.Count < 2)
        {
            var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
            probe.Start();
            var port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            ports.TryAdd(CrawlPartition.OwnerOf($"127.0.0.1:{port}", 2), port);
        }
        string Url(int part, string page) => $"http://127.0.0.1:{ports[part]}/{page}";
        var fetches = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        var sites = new List<StaticSite>();
        for (var part = 0; part < 2; part++)
        {
            var site = Path.Combine(_root, $"site{part}");
            Directory.CreateDirectory(site);
            var other = 1 - part;
            File.WriteAllText(Path.Combine(site, "index.html"), $"<html><body><a href='/a.html'>a</a><a href='{Url(other, "")}'>other</a></body></html>");
            File.WriteAllText(Path.Combine(site, "a.html"), $"<html><body><a href='/b.html'>b</a><a href='{Url(other, "a.html")}'>other a</a></body></html>");
            File.WriteAllText(Path.Combine(site, "b.html"), "<html><body><p>the end</p></body></html>");
            var authority = $"127.0.0.1:{ports[part]}";
            sites.Add(await StaticSite.StartAsync(site, app => app.Use(async (context, next) =>
            {
                fetches.AddOrUpdate(authority + context.Request.Path, 1, (_, n) => n + 1);
                await next();
            }), ports[part]));
        }
        var ledger = new Runtime.Ledger(Path.Combine(_root, "ledger.db"));
        async Task<List<string>> Part(int index, string runId, int maxPages)
        {
            var options = new CrawlOptions { AllowedAddressRanges = ["127.0.0.0/8"], PerHostDelay = TimeSpan.Zero, AllowedDomains = ["127.0.0.1"], MaxPages = maxPages };
            var store = new ShardStore(Path.Combine(_root, $"host{index}"));
            var shards = new List<ShardRef>();
            var partition = new CrawlPartition(index, 2, new LedgerCrawlHandoff(ledger, runId, index, 2));
            await new WebCrawler(options, store, NullLogger.Instance).RunAsync(runId, [Url(0, "")], s => { shards.Add(s); return Task.CompletedTask; }, CancellationToken.None, partition);
            var pages = new List<string>();
            foreach (var shard in shards) pages.AddRange((await store.ReadParquetAsync<RawPage>(shard)).Select(p => p.Url));
            return pages;
        }
        var parts = await Task.WhenAll(Task.Run(() => Part(0, "t", 100)), Task.Run(() => Part(1, "t", 100)));
        // The parts share the page limit.
        var limited = await Task.WhenAll(Task.Run(() => Part(0, "u", 4)), Task.Run(() => Part(1, "u", 4)));
        foreach (var site in sites) await site.DisposeAsync();
        Assert.Equal(4, limited.Sum(p => p.Count));

        // Each part fetched its own host's pages, all of them, and every page was fetched once by each crawl (t and u).
        for (var part = 0; part < 2; part++)
            Assert.Equal(new[] { "", "a.html", "b.html" }.Select(p => Url(part, p)).Order(), parts[part].Order());
        Assert.Equal(6, fetches.Count(f => f.Key.EndsWith("/") || f.Key.EndsWith(".html")));
        Assert.Equal(6 + 4, fetches.Where(f => f.Key.EndsWith("/") || f.Key.EndsWith(".html")).Sum(f => f.Value));
        Assert.All(fetches, f => Assert.True(f.Value <= 2, string.Join(", ", fetches)));
    }

    [Fact]
    public async Task Rate_limits_are_retried_and_timeouts_and_unreachable_hosts_are_counted()
    {
        var calls = 0;
        await using var server = await StaticSite.StartAsync(_root, app =>
        {
            app.MapGet("/", () => Results.Content("<a href='/limited'>l</a><a href='/slow'>s</a><a href='http://127.0.0.1:1/closed'>c</a>", "text/html"));
            app.MapGet("/limited", (HttpContext context) =>
            {
                // Two 429s with Retry-After, then the page.
                if (Interlocked.Increment(ref calls) <= 2)
                {
                    context.Response.Headers.RetryAfter = "1";
                    return Results.StatusCode(429);
                }
                return Results.Content("<p>finally</p>", "text/html");
            });
            // Answers only after the client gave up (its 1 s request timeout), however long that takes.
            app.MapGet("/slow", async (HttpContext context) =>
            {
                await Task.Delay(Timeout.Infinite, context.RequestAborted).ContinueWith(_ => { });
                return Results.Content("<p>late</p>", "text/html");
            });
        });
        var options = new CrawlOptions { AllowedAddressRanges = ["127.0.0.0/8"], PerHostDelay = TimeSpan.Zero, RequestTimeout = TimeSpan.FromSeconds(1), MaxRetries = 3 };
        var shards = new List<ShardRef>();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var summary = await new WebCrawler(options, new ShardStore(_root), NullLogger.Instance)
            .RunAsync("t", [server.Address.ToString()], s => { shards.Add(s); return Task.CompletedTask; }, CancellationToken.None);
        var pages = (await new ShardStore(_root).ReadParquetAsync<RawPage>(Assert.Single(shards))).Select(p => new Uri(p.Url).AbsolutePath).Order().ToList();
        Assert.Equal(["/", "/limited"], pages);
        Assert.Equal(3, calls);
        Assert.True(watch.Elapsed >= TimeSpan.FromSeconds(2), "Retry-After was not honoured");
        Assert.Equal(1, summary.ByReason["timeout"]);
        // The closed host's robots.txt is unreachable, which RFC 9309 treats as "disallow everything".
        Assert.Equal(1, summary.ByReason["robots"]);
        using var fetcher = new PageFetcher(options);
        var closed = await fetcher.FetchAsync("http://127.0.0.1:1/closed", _ => null, CancellationToken.None);
        Assert.Null(closed.Body);
        Assert.StartsWith("unreachable", closed.SkipReason);
    }

    [Fact]
    public async Task Private_addresses_are_refused_by_default()
    {
        await using var server = await StaticSite.StartAsync(_root);
        using var fetcher = new PageFetcher(new CrawlOptions());
        var result = await fetcher.FetchAsync(server.Address.ToString(), _ => null, CancellationToken.None);
        Assert.Null(result.Body);
        Assert.StartsWith("blocked-address", result.SkipReason);
    }

    public void Dispose() => Directory.Delete(_root, true);
}
