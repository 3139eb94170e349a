using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Runtime;
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
public sealed class CrawlWorker(CrawlOptions options, ShardStore store, IBus bus, Ledger ledger, ILogger<WebCrawler> logger)
    : LedgerJobWorker<CrawlRequested>(ledger, logger)
{
    protected override string Kind => JobKinds.Crawl;

    protected override string NameOf(CrawlRequested request) => JobName(request.RunId, request.Partition, request.Partitions);

    /// <summary>The job of one part of a run's crawl: the run id, with the part when the crawl is split.</summary>
    public static string JobName(string runId, int partition, int partitions) => partitions > 1 ? $"{runId}/p{partition}" : runId;

    protected override async Task<long> RunJobAsync(CrawlRequested message, CancellationToken ct)
    {
        if (message.Partitions < 1 || message.Partition < 0 || message.Partition >= message.Partitions)
            throw new ArgumentException($"crawl request for run {message.RunId}: part {message.Partition} of {message.Partitions} does not exist");
        var split = message.Partitions > 1;
        var crawlOptions = options;
        if (message.MaxPages > 0) crawlOptions = CloneWithMaxPages(options, message.MaxPages);
        var partition = split ? new CrawlPartition(message.Partition, message.Partitions, new LedgerCrawlHandoff(Ledger, message.RunId, message.Partition, message.Partitions)) : null;
        var step = new ShardStep(Ledger, WebCrawler.Stage);
        Task OnShard(ShardRef shard) => step.RecordSourceAsync(shard, () => bus.PublishBounded(new RawShardCreated(shard), ct));

        var shards = 0;
        if (message.WarcFiles is { Count: > 0 } files && message.Partition == 0)
        {
            // A message names WARC files by URI under the data root, confined like shards (a message from the bus must
            // not make a service read an arbitrary host file); with an object store they are fetched from it.
            var paths = new List<string>();
            foreach (var file in files) paths.Add(await store.FetchFileAsync(file, ct));
            var warc = await new WarcIngester(crawlOptions, store, Ledger, Logger).IngestAsync(message.RunId, paths, OnShard, ct);
            Ledger.Documents.Set(LedgerKeys.WarcSummary(message.RunId), JsonSerializer.Serialize(warc));
            shards += warc.Shards;
        }
        ct.ThrowIfCancellationRequested();
        var summary = new CrawlSummary(0, 0, new Dictionary<string, int>(), new Dictionary<string, int>());
        if (message.Seeds.Count > 0)
        {
            var crawler = new WebCrawler(crawlOptions, store, Logger);
            // Live counters for the run view and the dashboard, every few seconds while the crawl goes.
            using var reporting = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var progressKey = LedgerKeys.CrawlProgress(message.RunId, split ? message.Partition : null);
            void WriteProgress() => Ledger.Documents.Set(progressKey, JsonSerializer.Serialize(
                new CrawlCounters(crawler.Progress.Fetched, crawler.Progress.Failed, crawler.Progress.Queued, crawler.Progress.Shards)));
            var reporter = Task.Run(async () =>
            {
                while (!reporting.IsCancellationRequested)
                {
                    WriteProgress();
                    try
                    {
                        await Task.Delay(TimeSpan.FromSeconds(3), reporting.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }
            });
            try
            {
                summary = await crawler.RunAsync(message.RunId, message.Seeds, OnShard, ct, partition);
            }
            finally
            {
                await reporting.CancelAsync();
                await reporter;
                WriteProgress();
            }
        }
        // A crawl stopped by the service shutting down is not finished: no summary, so the run waits for the resumed crawl.
        ct.ThrowIfCancellationRequested();
        if (split)
        {
            // The crawl's summary is written by whichever part finds every part's summary there (each writes its own
            // first, so the last to finish always does; two that finish together write the same).
            Ledger.Documents.Set(LedgerKeys.CrawlPartSummary(message.RunId, message.Partition), JsonSerializer.Serialize(summary));
            var parts = Enumerable.Range(0, message.Partitions).Select(i => Ledger.Documents.Get(LedgerKeys.CrawlPartSummary(message.RunId, i))).ToList();
            if (parts.All(p => p is not null))
                Ledger.Documents.Set(LedgerKeys.CrawlSummary(message.RunId), JsonSerializer.Serialize(CrawlSummary.Merge(parts.Select(p => JsonSerializer.Deserialize<CrawlSummary>(p!)!).ToList())));
        }
        else Ledger.Documents.Set(LedgerKeys.CrawlSummary(message.RunId), JsonSerializer.Serialize(summary));
        shards += summary.Shards;
        await bus.PublishBounded(new StageCompleted(message.RunId, WebCrawler.Stage, shards), ct);
        return summary.Pages;
    }

    private static CrawlOptions CloneWithMaxPages(CrawlOptions source, int maxPages)
    {
        var copy = JsonSerializer.Deserialize<CrawlOptions>(JsonSerializer.Serialize(source))!;
        copy.MaxPages = maxPages;
        return copy;
    }
}
