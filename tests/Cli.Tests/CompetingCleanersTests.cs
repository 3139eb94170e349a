using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Cleaner;
using Pipeline.Contracts.V1;
using Pipeline.Crawler;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Tests.Shared;
using Pipeline.Contracts.Rows;

namespace Pipeline.Cli.Tests;

/// <summary>
/// Two `serve cleaner` processes on one queue (RabbitMQ competing consumers), each with a folder of its own, the shards
/// in S3 and the ledger (with the exact-dedup claims) in PostgreSQL: they split the shards, and when one is killed (-9)
/// mid-way the other finishes its shards, with nothing lost or cleaned twice.
/// </summary>
[Collection("end-to-end")]
public sealed class CompetingCleanersTests : IDisposable
{
    private const string RunId = "competing";
    private readonly string _root = Directory.CreateTempSubdirectory("competing-").FullName;
    private readonly S3TestBucket _bucket = new();
    private readonly string _reference = Directory.CreateTempSubdirectory("competing-ref-").FullName;
    private readonly PostgresTestDatabase _ledgerDatabase = new();
    private readonly RabbitMqBroker _broker = new();
    private readonly List<(Process Process, ConcurrentQueue<string> Log)> _cleaners = [];

    private Dictionary<string, string?> Settings => new(_broker.Settings.Concat(_bucket.Settings))
    {
        ["Pipeline:Ledger:ConnectionString"] = _ledgerDatabase.ConnectionString,
        ["Pipeline:Stages:cleaner:PrefetchCount"] = "1",
    };

    [Fact(Timeout = 300_000)]
    [Trait("Category", "RabbitMq")]
    [Trait("Category", "Postgres")]
    [Trait("Category", "S3")]
    public async Task Two_cleaners_split_the_shards_and_one_killed_mid_way_loses_nothing()
    {
        await _broker.RequireAsync();
        using var objects = new S3ObjectStore(_bucket.Options(), S3TestBucket.Credentials);
        var store = new ShardStore(Path.Combine(_root, "crawler"), objects);
        var raw = new List<ShardRef>();
        await using (var site = await StaticSite.StartAsync(SampleSite.Folder()))
        {
            var crawl = new CrawlOptions { MaxPages = 400, PagesPerShard = 12, PerHostConcurrency = 4, PerHostDelay = TimeSpan.Zero, AllowedAddressRanges = ["127.0.0.0/8"] };
            await new WebCrawler(crawl, store, NullLogger.Instance).RunAsync(RunId, [site.Address.ToString()], s => { raw.Add(s); return Task.CompletedTask; }, default);
        }
        Assert.True(raw.Count >= 12, $"{raw.Count} raw shards");

        // The same shards cleaned one after another in one process: what the two cleaners must add up to.
        var expected = new List<long>();
        var exactDuplicates = 0;
        var single = new ShardCleaner(new CleanerOptions(), new ShardStore(_reference));
        foreach (var shard in raw)
        {
            var result = await single.ProcessAsync(shard, default, source: store);
            exactDuplicates += ((CleanReport)result.Stats!).Removed.GetValueOrDefault("exact_dedup")?.Documents ?? 0;
            expected.AddRange((await new ShardStore(_reference).ReadParquetAsync<CleanDocument>(result.Outputs[0])).Select(d => ExactDedup.HashOf(d.Text)));
        }

        Assert.True(exactDuplicates > 0, "the crawl has no exact duplicates across shards, so it cannot show that cleaners on two hosts decide them once");
        var environment = new Dictionary<string, string?>(RabbitMqBroker.AsEnvironment(Settings).Concat(S3TestBucket.CredentialEnvironment));
        for (var i = 0; i < 2; i++)
        {
            var log = new ConcurrentQueue<string>();
            _cleaners.Add((PipelineProcess.Start(["serve", "cleaner", "--out", Path.Combine(_root, $"cleaner-{i}")], [], environment, log.Enqueue), log));
        }
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (await _broker.ConsumerCountAsync("raw-shard") < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the two cleaners did not both consume from raw-shard within 2 minutes");
            await Task.Delay(200);
        }

        using var publisher = PipelineHost.Build([], new Dictionary<string, string?>(Settings) { ["Pipeline:DataRoot"] = Path.Combine(_root, "publisher") }, quiet: true);
        await publisher.StartAsync();
        foreach (var shard in raw) await publisher.Bus().Publish(new RawShardCreated(shard));

        // Kill the first cleaner as soon as it has finished a shard: it is then on its next one.
        var ledger = Ledger.PostgreSql(_ledgerDatabase.ConnectionString);
        var (victim, victimLog) = _cleaners[0];
        while (!victimLog.Any(IsShardDone))
        {
            Assert.True(DateTime.UtcNow < deadline.AddMinutes(1), "the first cleaner finished no shard");
            await Task.Delay(20);
        }
        victim.Kill(entireProcessTree: true);
        await victim.WaitForExitAsync();
        var doneWhenKilled = ledger.Artifacts.Stats(RunId, ShardCleaner.Stage).Count;
        Assert.True(doneWhenKilled < raw.Count, "every shard was done before the kill");

        while (ledger.Artifacts.Stats(RunId, ShardCleaner.Stage).Count < raw.Count)
        {
            Assert.True(DateTime.UtcNow < deadline.AddMinutes(2), $"{ledger.Artifacts.Stats(RunId, ShardCleaner.Stage).Count} of {raw.Count} shards cleaned after the kill");
            Assert.False(_cleaners[1].Process.HasExited, "the surviving cleaner exited");
            await Task.Delay(100);
        }
        await publisher.StopAsync();

        // Both cleaners did some of the work; every raw shard was cleaned once, into one shard each.
        Assert.Contains(_cleaners[1].Log, IsShardDone);
        var outputs = ledger.Artifacts.Shards(RunId, ShardCleaner.Stage);
        Assert.Equal(raw.Count, outputs.Count);
        Assert.Equal(raw.Select(r => r.ShardId).Order(), outputs.Select(o => Assert.Single(o.ParentShardIds)).Order());
        var documents = new List<CleanDocument>();
        foreach (var output in outputs) documents.AddRange(await store.ReadParquetAsync<CleanDocument>(output));
        Assert.Equal(documents.Count, documents.Select(d => d.Id).Distinct().Count());
        // The same documents as one cleaner keeps (which copy of an exact duplicate is kept depends on the order).
        Assert.Equal(expected.Order(), documents.Select(d => ExactDedup.HashOf(d.Text)).Order());
    }

    private static bool IsShardDone(string line) => line.Contains("clean: shard ", StringComparison.Ordinal) && line.Contains(" done,", StringComparison.Ordinal);

    public void Dispose()
    {
        foreach (var (process, _) in _cleaners)
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit();
            process.Dispose();
        }
        Directory.Delete(_root, recursive: true);
        Directory.Delete(_reference, recursive: true);
        _ledgerDatabase.Dispose();
        _broker.Dispose();
    }
}
