using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Crawler.Warc;
using Pipeline.Storage;

namespace Pipeline.Crawler;

public sealed class CrawlerModule : IStageModule
{
    public string Name => "crawler";

    public void AddServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(StrictConfig.Bind<CrawlOptions>(configuration, CrawlOptions.Section));
        services.AddLedgerJobWorker<CrawlRequested, CrawlWorker>();
    }

    // Acknowledged at once: a crawl can take far longer than RabbitMQ's consumer_timeout.
    public void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits) =>
        bus.AddLedgerJobConsumer<CrawlRequested>("crawl-requested", limits);
}

/// <summary>
/// Runs a run's crawl (WARC files, then seeds) as a ledger-tracked job; each committed shard is recorded in the
/// ledger and announced. A restarted service resumes an unfinished crawl from its persisted frontier.
/// </summary>
public sealed class CrawlWorker(CrawlOptions options, ShardStore store, IBus bus, RunLedger ledger, ILogger<WebCrawler> logger)
    : LedgerJobWorker<CrawlRequested>(ledger, logger)
{
    protected override string Kind => "crawl";

    protected override string NameOf(CrawlRequested request) => request.RunId;

    protected override async Task<long> RunJobAsync(CrawlRequested message, CancellationToken ct)
    {
        var crawlOptions = options;
        if (message.MaxPages > 0) crawlOptions = CloneWithMaxPages(options, message.MaxPages);
        async Task OnShard(ShardRef shard)
        {
            if (!Ledger.IsProcessed(WebCrawler.Stage, shard.ShardId))
                Ledger.CompleteInput(WebCrawler.Stage, shard.ShardId, message.RunId, [shard]);
            await bus.Publish(new RawShardCreated(shard), ct);
        }

        var shards = 0;
        if (message.WarcFiles is { Count: > 0 } files)
        {
            // A message names WARC files by URI under the data root, confined like shards (a message from the bus must
            // not make a service read an arbitrary host file).
            var paths = files.Select(store.Resolve).ToList();
            var warc = await new WarcIngester(crawlOptions, store, Ledger, Logger).IngestAsync(message.RunId, paths, OnShard, ct);
            Ledger.Set($"warc-summary:{message.RunId}", JsonSerializer.Serialize(warc));
            shards += warc.Shards;
        }
        ct.ThrowIfCancellationRequested();
        var summary = message.Seeds.Count > 0
            ? await new WebCrawler(crawlOptions, store, Logger).RunAsync(message.RunId, message.Seeds, OnShard, ct)
            : new CrawlSummary(0, 0, new Dictionary<string, int>(), new Dictionary<string, int>());
        // A crawl stopped by the service shutting down is not finished: no summary, so the run waits for the resumed crawl.
        ct.ThrowIfCancellationRequested();
        Ledger.Set($"crawl-summary:{message.RunId}", JsonSerializer.Serialize(summary));
        shards += summary.Shards;
        await bus.Publish(new StageCompleted(message.RunId, WebCrawler.Stage, shards), ct);
        return summary.Pages;
    }

    private static CrawlOptions CloneWithMaxPages(CrawlOptions source, int maxPages)
    {
        var copy = JsonSerializer.Deserialize<CrawlOptions>(JsonSerializer.Serialize(source))!;
        copy.MaxPages = maxPages;
        return copy;
    }
}
