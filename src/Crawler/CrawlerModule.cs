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

    public void AddServices(IServiceCollection services, IConfiguration configuration) =>
        services.AddSingleton(configuration.GetSection(CrawlOptions.Section).Get<CrawlOptions>() ?? new CrawlOptions());

    public void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits) =>
        bus.AddConsumer<CrawlRequestedConsumer>().Endpoint(e => e.Apply(limits));
}

/// <summary>Runs a crawl for a run; each committed shard is recorded in the ledger and announced.</summary>
public sealed class CrawlRequestedConsumer(CrawlOptions options, ShardStore store, RunLedger ledger, ILogger<WebCrawler> logger) : IConsumer<CrawlRequested>
{
    public async Task Consume(ConsumeContext<CrawlRequested> context)
    {
        var message = context.Message;
        var crawlOptions = options;
        if (message.MaxPages > 0) crawlOptions = CloneWithMaxPages(options, message.MaxPages);
        async Task OnShard(ShardRef shard)
        {
            if (!ledger.IsProcessed(WebCrawler.Stage, shard.ShardId))
                ledger.CompleteInput(WebCrawler.Stage, shard.ShardId, message.RunId, [shard]);
            await context.Publish(new RawShardCreated(shard));
        }

        var shards = 0;
        if (message.WarcFiles is { Count: > 0 } files)
        {
            var warc = await new WarcIngester(crawlOptions, store, ledger, logger).IngestAsync(message.RunId, files, OnShard, context.CancellationToken);
            ledger.Set($"warc-summary:{message.RunId}", System.Text.Json.JsonSerializer.Serialize(warc));
            shards += warc.Shards;
        }
        if (message.Seeds.Count > 0)
        {
            var summary = await new WebCrawler(crawlOptions, store, logger).RunAsync(message.RunId, message.Seeds, OnShard, context.CancellationToken);
            ledger.Set($"crawl-summary:{message.RunId}", System.Text.Json.JsonSerializer.Serialize(summary));
            shards += summary.Shards;
        }
        else
        {
            ledger.Set($"crawl-summary:{message.RunId}", System.Text.Json.JsonSerializer.Serialize(new CrawlSummary(0, 0, new Dictionary<string, int>(), new Dictionary<string, int>())));
        }
        await context.Publish(new StageCompleted(message.RunId, WebCrawler.Stage, shards));
    }

    private static CrawlOptions CloneWithMaxPages(CrawlOptions source, int maxPages)
    {
        var json = System.Text.Json.JsonSerializer.Serialize(source);
        var copy = System.Text.Json.JsonSerializer.Deserialize<CrawlOptions>(json)!;
        copy.MaxPages = maxPages;
        return copy;
    }
}
