using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;

namespace Pipeline.Crawler;

/// <summary>
/// A polite breadth-first crawler: per-host concurrency and delay, robots.txt, sitemaps, scope rules, a persisted
/// frontier, and raw-page shards that roll by page count. <see cref="RunAsync"/> resumes a killed crawl.
/// </summary>
public sealed class WebCrawler(CrawlOptions options, ShardStore store, ILogger logger)
{
    public const string Stage = Contracts.StageNames.Crawl;

    private readonly UrlNormalizer _normalizer = new(options.StrippedParameters);
    // Lazy because GetOrAdd may run its factory more than once when two workers meet a new host together; robots.txt
    // must be fetched once per host.
    private readonly ConcurrentDictionary<string, Lazy<Task<HostRobots>>> _robots = new();
    private readonly ConcurrentDictionary<string, HostGate> _hosts = new();
    private readonly List<Regex> _blockedPatterns = options.BlockedUrlPatterns.Select(p => new Regex(p, RegexOptions.IgnoreCase | RegexOptions.Compiled)).ToList();
    private HashSet<string> _seedHosts = [];

    public CrawlProgress Progress { get; } = new();

    private readonly SemaphoreSlim _snapshotGate = new(1, 1);
    private CrawlPartition? _partition;
    private int _received;

    /// <summary>
    /// A part with nothing queued takes the URLs other parts handed it; with none new it says it is idle and waits
    /// until every part is (the crawl is over) or new URLs arrive. True when the crawl is over (or stopping).
    /// </summary>
    private async Task<bool> OutOfWorkAsync(CrawlPartition partition, Frontier frontier, bool budgetLeft, CancellationToken ct)
    {
        while (true)
        {
            var received = partition.Handoff.Received();
            var added = received.Count > _received ? frontier.Add(received) : 0;
            _received = received.Count;
            if (added > 0 && budgetLeft)
            {
                partition.Handoff.SetIdle(null);
                return false;
            }
            partition.Handoff.SetIdle(_received);
            if (partition.Handoff.AllIdle()) return true;
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(300), ct);
            }
            catch (OperationCanceledException)
            {
                return true;
            }
        }
    }

    /// <summary>Queues links in this crawl's frontier, or hands them to the part of the crawl that owns their host.</summary>
    private void AddLinks(Frontier frontier, IEnumerable<(string Url, int Depth)> links)
    {
        if (_partition is not { } partition)
        {
            frontier.Add(links);
            return;
        }
        foreach (var group in links.GroupBy(l => CrawlPartition.OwnerOf(new Uri(l.Url).Authority, partition.Count)))
        {
            if (group.Key == partition.Index) frontier.Add(group);
            else partition.Handoff.Send(group.Key, group.ToList());
        }
    }

    // Frontier snapshots of a crawl, each a published folder named by its count of committed shards.
    private static string SnapshotsUri(string folder) => $"{folder}/frontier-snapshots";

    /// <summary>
    /// With an object store a crawl may resume on another host, whose folder lacks the frontier or holds an older one
    /// (the crawl ran there before): the latest snapshot in the store replaces it when it has more committed shards.
    /// </summary>
    private async Task RestoreFrontierAsync(string folder, string frontierPath, CancellationToken ct)
    {
        var latest = (await store.ListFoldersAsync(SnapshotsUri(folder), ct)).LastOrDefault();
        if (latest is null) return;
        var committed = long.Parse(latest[(latest.LastIndexOf('/') + 1)..]);
        if (File.Exists(frontierPath))
        {
            using var local = new Frontier(frontierPath);
            if (local.CommittedShards().Count >= committed) return;
        }
        var fetched = await store.FetchFolderAsync(latest, ct);
        foreach (var file in new[] { frontierPath, frontierPath + "-wal", frontierPath + "-shm" }) File.Delete(file);
        Directory.CreateDirectory(Path.GetDirectoryName(frontierPath)!);
        AtomicWrite.Commit(Path.Combine(fetched, "frontier.db"), frontierPath);
        Directory.Delete(fetched, recursive: true);
        logger.LogInformation("crawl: resuming from the frontier snapshot {Snapshot} ({Shards} shards committed)", latest, committed);
    }

    // Costs a copy of the frontier per shard (tens of bytes a URL); the previous snapshot is then removed.
    private async Task PublishFrontierAsync(string crawlFolder, Frontier frontier, CancellationToken ct)
    {
        var committed = frontier.CommittedShards().Count;
        var uri = $"{SnapshotsUri(crawlFolder)}/{committed:D6}";
        // A folder here counts as a snapshot, so it is written whole.
        await store.CommitFolderAsync(uri, temp => frontier.SnapshotTo(Path.Combine(temp, "frontier.db")), ct);
        Directory.Delete(store.Resolve(uri), recursive: true);
        foreach (var older in await store.ListFoldersAsync(SnapshotsUri(crawlFolder), ct))
            if (older != uri) await store.UnpublishFolderAsync(older, ct);
    }

    /// <summary>
    /// Crawls (or resumes crawling) a run from its seeds: the frontier restored and opened, shards a killed process
    /// committed announced again, the seeds and their sitemaps queued, then pages fetched into shards until the page
    /// limit or the frontier runs out (or the crawl is stopped: what was fetched is still committed).
    /// </summary>
    /// <param name="onShard">Called after each shard is committed (record it in the ledger, announce it).</param>
    /// <param name="partition">This crawl's part, when the crawl is split by host (null: the whole crawl).</param>
    public async Task<CrawlSummary> RunAsync(string runId, IEnumerable<string> seeds, Func<ShardRef, Task> onShard, CancellationToken ct,
        CrawlPartition? partition = null)
    {
        _partition = partition;
        var folder = partition is null ? $"crawl/{runId}" : $"crawl/{runId}/{partition.Tag}";
        var frontierPath = store.Resolve($"{folder}/frontier.db");
        if (store.HasObjectStore) await RestoreFrontierAsync(folder, frontierPath, ct);
        using var frontier = new Frontier(frontierPath);
        using var fetcher = new PageFetcher(options);

        // A resume gives URLs that failed before (connection errors, 5xx) another attempt, up to MaxAttempts in all.
        var requeued = frontier.RequeueFailed(options.MaxAttempts);
        if (requeued > 0) logger.LogInformation("crawl: {Count} failed URLs queued again", requeued);
        var shards = new ShardWriter(this, runId, partition is null ? "" : partition.Tag + "-", folder, frontier, onShard);
        await shards.AnnounceCommittedAsync();
        await SeedAsync(seeds, frontier, fetcher, partition, ct);
        await FetchAsync(frontier, fetcher, shards, partition, ct);
        // On a stop too, the pages fetched so far become a committed shard (and done in the frontier), so a resume
        // does not fetch them again. Written without the stop's token: it is short and must not be cut in half.
        await shards.FlushAsync(CancellationToken.None);
        ct.ThrowIfCancellationRequested();

        var byState = frontier.CountByState();
        return new CrawlSummary(byState.GetValueOrDefault("done"), Progress.Shards, byState, frontier.CountByReason()) { Retries = fetcher.Retries, Requeued = requeued };
    }

    /// <summary>Queues this part's seeds (every seed host is in scope for every part) and the sitemaps of their hosts.</summary>
    private async Task SeedAsync(IEnumerable<string> seeds, Frontier frontier, PageFetcher fetcher, CrawlPartition? partition, CancellationToken ct)
    {
        var normalizedSeeds = seeds.Select(s => (Seed: s, Url: _normalizer.Normalize(s))).ToList();
        var seedUrls = normalizedSeeds.Select(n => n.Url).OfType<string>().ToList();
        // A seed that is not an http(s) URL (file://, ftp://, a typo) is recorded as skipped, never silently dropped.
        frontier.AddSkipped(normalizedSeeds.Where(n => n.Url is null).Select(n => n.Seed), "scheme");
        _seedHosts = seedUrls.Select(u => new Uri(u).Host).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var ownSeeds = seedUrls.Where(u => partition?.Owns(u) ?? true).ToList();
        frontier.Add(ownSeeds.Select(u => (u, 0)));
        partition?.Handoff.SetIdle(null);
        foreach (var host in ownSeeds.Select(u => new Uri(u)).DistinctBy(u => u.Authority))
            await AddSitemapsAsync(host, frontier, fetcher, ct);
    }

    /// <summary>
    /// The fetch loop: queued URLs are taken within the page limit (shared by the parts of a split crawl) and fetched
    /// at most <see cref="CrawlOptions.GlobalConcurrency"/> at once (per host as its gate allows); each page goes to
    /// the shard writer. A part that runs out of work waits for URLs from the others until every part is idle.
    /// </summary>
    private async Task FetchAsync(Frontier frontier, PageFetcher fetcher, ShardWriter shards, CrawlPartition? partition, CancellationToken ct)
    {
        var accepted = frontier.CountByState().GetValueOrDefault("done");
        // A split crawl's parts share the page limit; each starts counting from the pages it committed.
        partition?.Handoff.SetPages(accepted);
        var limitReached = false;
        var inFlight = new ConcurrentDictionary<string, byte>();
        // URLs this process has taken (their state in the frontier changes only when their shard is committed).
        var taken = new HashSet<string>();
        using var global = new SemaphoreSlim(options.GlobalConcurrency);
        var running = new List<Task>();

        async Task FetchOneAsync(string url, int depth)
        {
            try
            {
                RawPage? page;
                try
                {
                    page = await FetchPageAsync(url, depth, frontier, fetcher, ct);
                }
                catch (Exception e) when (!ct.IsCancellationRequested)
                {
                    // Whatever a hostile page does, it costs that page, never the crawl.
                    logger.LogWarning("crawl: {Url} failed: {Error}", url, e.Message);
                    Progress.AddFailed();
                    frontier.MarkTerminal(url, "failed", $"error: {e.GetType().Name}");
                    return;
                }
                if (page is not null) await shards.AddAsync(url, page, ct);
            }
            finally
            {
                inFlight.TryRemove(url, out _);
                global.Release();
            }
        }

        while (!ct.IsCancellationRequested)
        {
            running.RemoveAll(t => t.IsCompleted);
            var budget = options.MaxPages - accepted - inFlight.Count;
            var batch = budget <= 0 || limitReached ? [] : frontier.TakeQueued(Math.Min(budget, options.GlobalConcurrency * 4), taken);
            if (batch.Count == 0)
            {
                if (running.Count > 0)
                {
                    await Task.WhenAny(running);
                    continue;
                }
                if (partition is null || await OutOfWorkAsync(partition, frontier, budget > 0 && !limitReached, ct)) break;
                continue;
            }
            foreach (var (url, depth) in batch)
            {
                if (accepted >= options.MaxPages || (partition is not null && !partition.Handoff.TakePage(options.MaxPages)))
                {
                    limitReached = true;
                    break;
                }
                try
                {
                    await global.WaitAsync(ct);
                }
                catch (OperationCanceledException)
                {
                    break; // stopping: what was fetched is still committed
                }
                inFlight[url] = 0;
                taken.Add(url);
                accepted++;
                running.Add(Task.Run(() => FetchOneAsync(url, depth), ct));
            }
            Progress.Queued = frontier.CountByState().GetValueOrDefault("queued");
        }
        try
        {
            await Task.WhenAll(running);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping: the fetches in flight were abandoned; what is buffered is still written by the caller.
        }
    }

    /// <summary>
    /// Raw-page shards as the crawl fills them: pages are buffered until a shard's worth (pages or characters), then
    /// written (with its WARC archive when asked), committed in the frontier (its pages done; with an object store,
    /// snapshotted before it is announced) and announced.
    /// </summary>
    private sealed class ShardWriter(WebCrawler crawler, string runId, string tag, string folder, Frontier frontier, Func<ShardRef, Task> onShard)
    {
        private readonly List<(string Url, RawPage Page)> _buffer = [];
        private readonly Lock _gate = new();
        private readonly string _configHash = StableId.ConfigHash(crawler.Options);
        private long _chars;
        private long _seq;

        /// <summary>Shards committed by an earlier, killed process may not have been announced: announce them again (consumers are idempotent).</summary>
        public async Task AnnounceCommittedAsync()
        {
            var committed = frontier.CommittedShards();
            foreach (var (_, shard) in committed) await onShard(shard);
            _seq = committed.Count == 0 ? 0 : committed[^1].Seq;
            crawler.Progress.Shards = committed.Count;
        }

        public async Task AddAsync(string url, RawPage page, CancellationToken ct)
        {
            List<(string, RawPage)>? full = null;
            lock (_gate)
            {
                _buffer.Add((url, page));
                _chars += page.Html.Length;
                if (_buffer.Count >= crawler.Options.PagesPerShard || _chars >= crawler.Options.CharsPerShard)
                {
                    full = [.. _buffer];
                    _buffer.Clear();
                    _chars = 0;
                }
            }
            if (full is not null) await WriteAsync(full, ct);
        }

        /// <summary>Writes what is buffered as a last, smaller shard.</summary>
        public async Task FlushAsync(CancellationToken ct)
        {
            List<(string, RawPage)> rest;
            lock (_gate)
            {
                rest = [.. _buffer];
                _buffer.Clear();
                _chars = 0;
            }
            if (rest.Count > 0) await WriteAsync(rest, ct);
        }

        private async Task WriteAsync(List<(string Url, RawPage Page)> pages, CancellationToken ct)
        {
            var seq = Interlocked.Increment(ref _seq);
            var shardId = StableId.Of(runId, Stage, tag + seq);
            var rows = pages.Select(p => p.Page).ToList();
            var store = crawler.Store;
            var shard = await WriteShardAsync(store, $"shards/crawl/{runId}/raw-{tag}{seq:D5}.parquet", rows,
                new ShardDescriptor(shardId, Stage, _configHash, [], runId), crawler.Options, ct);
            if (crawler.Options.ArchiveWarc)
            {
                // Written before the frontier commit: a crash in between rewrites both, never leaves a page unarchived.
                await store.CommitFileAsync($"warc/{runId}/crawl-{tag}{seq:D5}.warc.gz", stream =>
                {
                    var writer = new Warc.WarcWriter(stream);
                    writer.WriteWarcInfo("PipelineBot");
                    foreach (var page in rows)
                        writer.WriteResponse(page.FinalUrl, page.FetchTime, page.Status, "text/html; charset=utf-8", System.Text.Encoding.UTF8.GetBytes(page.Html));
                    return Task.CompletedTask;
                }, ct);
            }
            if (store.HasObjectStore)
            {
                // Committed and snapshotted one shard at a time, so each snapshot holds every commit before it; the
                // shard is announced only once a snapshot holding it is up, so a crawl resumed on another host never
                // writes a different shard under an announced shard's id.
                await crawler._snapshotGate.WaitAsync(ct);
                try
                {
                    frontier.CommitShard(seq, shard, pages.Select(p => p.Url));
                    await crawler.PublishFrontierAsync(folder, frontier, ct);
                }
                finally
                {
                    crawler._snapshotGate.Release();
                }
            }
            else frontier.CommitShard(seq, shard, pages.Select(p => p.Url));
            crawler.Progress.Shards++;
            crawler.Logger.LogInformation("crawl: shard {Shard} with {Pages} pages", shard.Uri, rows.Count);
            await onShard(shard);
        }
    }

    private CrawlOptions Options => options;

    private ShardStore Store => store;

    private ILogger Logger => logger;

    /// <summary>Writes a raw-page shard in row groups of at most <see cref="CrawlOptions.CharsPerRowGroup"/> characters of HTML.</summary>
    internal static async Task<ShardRef> WriteShardAsync(ShardStore store, string uri, IReadOnlyList<RawPage> pages, ShardDescriptor descriptor, CrawlOptions options, CancellationToken ct)
    {
        await using var writer = store.CreateParquetWriter<RawPage>(uri, descriptor);
        await writer.AppendAsync(pages, p => p.Html.Length, options.CharsPerRowGroup, ct);
        return await writer.CompleteAsync(ct);
    }

    private async Task<RawPage?> FetchPageAsync(string url, int depth, Frontier frontier, PageFetcher fetcher, CancellationToken ct)
    {
        var uri = new Uri(url);
        if (ScopeRefusal(uri) is { } refusal)
        {
            frontier.MarkTerminal(url, "skipped", refusal);
            return null;
        }
        var robots = await RobotsForAsync(uri, fetcher, frontier, ct);
        if (!robots.Rules.IsAllowed(uri.PathAndQuery))
        {
            // A host whose robots.txt could not even be dialled (the address guard refused it) is reported as such.
            frontier.MarkTerminal(url, "skipped", robots.Failure?.StartsWith("blocked-address") == true ? "blocked-address" : "robots");
            return null;
        }
        var gate = _hosts.GetOrAdd(uri.Authority, _ => new HostGate(options.PerHostConcurrency));
        var delay = robots.Rules.CrawlDelay is { } d && d > options.PerHostDelay ? d : options.PerHostDelay;
        FetchResult result;
        await gate.EnterAsync(delay, ct);
        try
        {
            result = await fetcher.FetchAsync(url, next => ScopeRefusal(next) ?? (IsRobotsAllowedCached(next) ? null : "robots"), ct);
        }
        finally
        {
            gate.Exit();
        }
        if (result.Body is null)
        {
            Progress.AddFailed();
            frontier.MarkTerminal(url, result.SkipReason?.StartsWith("http-") == true || result.SkipReason is "timeout" || result.SkipReason?.StartsWith("unreachable") == true ? "failed" : "skipped",
                result.SkipReason ?? "no-body");
            return null;
        }
        Progress.AddFetched(result.Body.Length);
        var (html, charset, charsetSource) = CharsetDecoder.Decode(result.Body, result.HeaderCharset);
        var finalUri = new Uri(result.FinalUrl);
        var links = LinkExtractor.Extract(html, finalUri);
        if (depth < options.MaxDepth)
        {
            var next = links.Links.Select(l => _normalizer.Normalize(l)).OfType<string>()
                .Where(l => ScopeRefusal(new Uri(l)) is null)
                .Distinct()
                .Select(l => (l, depth + 1));
            AddLinks(frontier, next);
            frontier.AddSkipped(links.Links.Where(l => l.Scheme != Uri.UriSchemeHttp && l.Scheme != Uri.UriSchemeHttps).Select(l => l.OriginalString).Distinct(), "scheme");
        }
        return new RawPage
        {
            Url = url,
            FinalUrl = _normalizer.Normalize(finalUri) ?? result.FinalUrl,
            FetchTime = DateTime.UtcNow,
            Status = result.Status,
            ContentType = result.ContentType,
            Charset = charset,
            CharsetSource = charsetSource,
            LanguageHint = links.Language,
            Html = html,
            OutLinks = links.Links.Count,
            Source = Stage,
            Truncated = result.Truncated,
        };
    }

    private const int MaxSitemapsPerHost = 1000;

    private async Task AddSitemapsAsync(Uri site, Frontier frontier, PageFetcher fetcher, CancellationToken ct)
    {
        var key = $"sitemaps:{site.Authority}";
        if (frontier.GetMeta(key) is not null) return;
        var robots = await RobotsForAsync(site, fetcher, frontier, ct);
        var pending = new Queue<Uri>(robots.Rules.Sitemaps.Select(s => Uri.TryCreate(new Uri(site, "/"), s, out var u) ? u : null).OfType<Uri>());
        if (pending.Count == 0) pending.Enqueue(new Uri(site, "/sitemap.xml"));
        var seen = new HashSet<Uri>();
        // What is queued is bounded by what can be fetched: a host's sitemaps add at most the crawl's page limit, and
        // no further sitemap is read once that many pages came from them (a chain of sitemap indexes can name millions).
        var room = options.MaxPages;
        while (pending.Count > 0 && seen.Count < MaxSitemapsPerHost && room > 0)
        {
            var sitemapUri = pending.Dequeue();
            if (!seen.Add(sitemapUri)) continue;
            if (ScopeRefusal(sitemapUri, ignoreExtension: true) is { } refused)
            {
                frontier.AddSkipped([sitemapUri.OriginalString], $"sitemap-{refused}");
                continue;
            }
            // Redirects of a sitemap pass the same scope checks as pages (and every connection the address guard).
            var result = await fetcher.FetchAsync(sitemapUri.ToString(), next => ScopeRefusal(next, ignoreExtension: true), ct, anyContentType: true);
            if (result.Body is null)
            {
                if (result.SkipReason?.StartsWith("redirect-refused") == true || result.SkipReason == "scheme")
                    frontier.AddSkipped([sitemapUri.OriginalString], $"sitemap-{result.SkipReason}");
                continue;
            }
            var sitemap = SitemapReader.Parse(System.Text.Encoding.UTF8.GetString(result.Body), sitemapUri);
            foreach (var child in sitemap.ChildSitemaps.Take(MaxSitemapsPerHost - pending.Count)) pending.Enqueue(child);
            var pages = sitemap.Pages.Select(p => _normalizer.Normalize(p)).OfType<string>().Where(p => ScopeRefusal(new Uri(p)) is null).Take(room).ToList();
            room -= pages.Count;
            AddLinks(frontier, pages.Select(p => (p, 0)));
            frontier.AddSkipped(sitemap.Pages.Where(p => p.Scheme != Uri.UriSchemeHttp && p.Scheme != Uri.UriSchemeHttps).Select(p => p.OriginalString), "scheme");
        }
        frontier.SetMeta(key, "done");
    }

    /// <summary>A host's robots.txt rules, and why it could not be fetched when it could not.</summary>
    private sealed record HostRobots(RobotsTxt Rules, string? Failure);

    private Task<HostRobots> RobotsForAsync(Uri uri, PageFetcher fetcher, Frontier frontier, CancellationToken ct)
    {
        if (!options.RespectRobots) return Task.FromResult(new HostRobots(RobotsTxt.AllowAll, null));
        return _robots.GetOrAdd(uri.GetLeftPart(UriPartial.Authority), origin => new(() => FetchRobotsAsync(origin, fetcher, frontier, ct))).Value;
    }

    private async Task<HostRobots> FetchRobotsAsync(string origin, PageFetcher fetcher, Frontier frontier, CancellationToken ct)
    {
        // Redirects of robots.txt pass the same scope checks as pages (and every connection the address guard).
        var result = await fetcher.FetchAsync(origin + "/robots.txt", next => ScopeRefusal(next, ignoreExtension: true), ct, anyContentType: true);
        if (result.Body is not null) return new HostRobots(RobotsTxt.Parse(System.Text.Encoding.UTF8.GetString(result.Body), options.UserAgent), null);
        // RFC 9309 2.3.1: 4xx means no restrictions, and so does a redirect chain that cannot be followed
        // (2.3.1.2: "MAY assume that the robots.txt file is unavailable"); 5xx or unreachable means complete disallow.
        if (result.Status is >= 400 and < 500) return new HostRobots(RobotsTxt.AllowAll, null);
        if (result.SkipReason is { } reason && (reason.StartsWith("redirect-") || reason == "scheme"))
        {
            frontier.AddSkipped([origin + "/robots.txt"], $"robots-{reason}");
            logger.LogWarning("crawl: robots.txt of {Origin} not followed ({Reason}); treated as unavailable (no restrictions)", origin, reason);
            return new HostRobots(RobotsTxt.AllowAll, reason);
        }
        logger.LogWarning("crawl: robots.txt of {Origin} unavailable ({Reason}); host treated as disallowed", origin, result.SkipReason);
        return new HostRobots(RobotsTxt.DisallowAll, result.SkipReason);
    }

    private bool IsRobotsAllowedCached(Uri uri) =>
        !_robots.TryGetValue(uri.GetLeftPart(UriPartial.Authority), out var robots) || !robots.IsValueCreated || !robots.Value.IsCompletedSuccessfully || robots.Value.Result.Rules.IsAllowed(uri.PathAndQuery);

    /// <summary>Why a URL is out of scope, or null when it may be crawled.</summary>
    internal string? ScopeRefusal(Uri uri, bool ignoreExtension = false)
    {
        if (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) return "scheme";
        var host = uri.Host.ToLowerInvariant();
        if (options.BlockedDomains.Any(d => HostMatches(host, d))) return "blocked-domain";
        var domains = options.AllowedDomains.Count > 0 ? options.AllowedDomains : _seedHosts.ToList();
        if (domains.Count > 0 && !domains.Any(d => HostMatches(host, d))) return "out-of-scope";
        var text = uri.ToString();
        if (options.AllowedPrefixes.Count > 0 && !options.AllowedPrefixes.Any(p => text.StartsWith(p, StringComparison.OrdinalIgnoreCase))) return "out-of-scope";
        if (_blockedPatterns.Any(p => p.IsMatch(text))) return "blocked-pattern";
        if (!ignoreExtension)
        {
            var extension = Path.GetExtension(uri.AbsolutePath).ToLowerInvariant();
            if (extension.Length > 0 && options.SkippedExtensions.Contains(extension)) return "extension";
        }
        return null;
    }

    private static bool HostMatches(string host, string rule)
    {
        rule = rule.ToLowerInvariant();
        return rule.StartsWith('.') ? host.EndsWith(rule, StringComparison.Ordinal) || host == rule[1..] : host == rule || host.EndsWith("." + rule, StringComparison.Ordinal);
    }

    /// <summary>Per-host politeness: a concurrency limit and a minimum spacing between request starts.</summary>
    private sealed class HostGate(int concurrency)
    {
        private readonly SemaphoreSlim _slots = new(concurrency);
        private readonly SemaphoreSlim _spacing = new(1);
        private DateTime _next = DateTime.MinValue;

        public async Task EnterAsync(TimeSpan delay, CancellationToken ct)
        {
            await _slots.WaitAsync(ct);
            await _spacing.WaitAsync(ct);
            try
            {
                var wait = _next - DateTime.UtcNow;
                if (wait > TimeSpan.Zero) await Task.Delay(wait, ct);
                _next = DateTime.UtcNow + delay;
            }
            finally
            {
                _spacing.Release();
            }
        }

        public void Exit() => _slots.Release();
    }
}
