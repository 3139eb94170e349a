using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Pipeline.Cleaner;
using Pipeline.Contracts.V1;
using Pipeline.Crawler;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;

namespace Pipeline.Cli.Tests;

/// <summary>Bad shard references go to the error queue with their reason; the consumer keeps working; redelivery is a no-op.</summary>
[Collection("end-to-end")]
public sealed class PoisonMessageTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("poison-").FullName;
    private readonly RabbitMqBroker _broker = new();

    private static string Html(int i) =>
        $"<html><body><p>{string.Join(' ', Enumerable.Repeat($"The archive number {i} has to be kept with the other packages and that is all there is to it.", 12))}</p></body></html>";

    private async Task<ShardRef> GoodShard(ShardStore store, string id) =>
        await store.WriteParquetAsync($"shards/crawl/poison/{id}.parquet",
            Enumerable.Range(0, 3).Select(i => new RawPage { Url = $"http://x/{id}/{i}", FinalUrl = $"http://x/{id}/{i}", Status = 200, Html = Html(i) }).ToList(),
            new ShardDescriptor(id, "crawl", "c", [], "poison"));

    private async Task Exercise(IReadOnlyDictionary<string, string?> settings)
    {
        var overrides = new Dictionary<string, string?>(settings) { ["Pipeline:DataRoot"] = _root, ["Pipeline:Retry:Limit"] = "1" };
        using var host = PipelineHost.Build([new CleanerModule()], overrides, quiet: true);
        await host.StartAsync();
        var bus = host.Bus();
        var store = host.Services.GetRequiredService<ShardStore>();
        var ledger = host.Services.GetRequiredService<Ledger>();
        var announced = 0;
        var handle = bus.ConnectReceiveEndpoint($"test-clean-shards-{Guid.NewGuid():N}", e => e.Handler<CleanShardCreated>(_ =>
        {
            Interlocked.Increment(ref announced);
            return Task.CompletedTask;
        }));
        await handle.Ready;

        var good = await GoodShard(store, "good-1");
        await bus.Publish(new RawShardCreated(good with { ShardId = "missing", Uri = "shards/crawl/poison/missing.parquet" }));
        await bus.Publish(new RawShardCreated(good with { ShardId = "tampered", Sha256 = new string('0', 64) }));
        await bus.Publish(new RawShardCreated(good with { ShardId = "escape", Uri = "../../etc/passwd" }));
        await bus.Publish(new RawShardCreated(good));
        await bus.Publish(new RawShardCreated(good)); // redelivery of a processed shard
        await WaitFor(() => ledger.Artifacts.Failures("poison", ShardCleaner.Stage).Count == 3 && ledger.Artifacts.IsProcessed(ShardCleaner.Stage, "good-1"));
        var second = await GoodShard(store, "good-2");
        await bus.Publish(new RawShardCreated(second));
        await WaitFor(() => ledger.Artifacts.IsProcessed(ShardCleaner.Stage, "good-2") && announced == 2);
        await Task.Delay(500);
        Assert.Equal(2, announced); // good-1 announced once despite the redelivery, then good-2

        var failures = ledger.Artifacts.Failures("poison", ShardCleaner.Stage).ToDictionary(f => f.InputId, f => f.Error);
        Assert.Contains("does not exist", failures["missing"]);
        Assert.Contains("checksum mismatch", failures["tampered"]);
        Assert.Contains("'..'", failures["escape"]);
        await handle.StopAsync();
        await host.StopAsync();
    }

    private static async Task WaitFor(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out");
            await Task.Delay(100);
        }
    }

    [Fact(Timeout = 120_000)]
    public async Task In_memory() => await Exercise(new Dictionary<string, string?> { ["Pipeline:Transport"] = "InMemory" });

    [Fact(Timeout = 120_000)]
    [Trait("Category", "RabbitMq")]
    public async Task Over_RabbitMQ_the_reason_is_in_the_error_queue()
    {
        await _broker.RequireAsync();
        await Exercise(_broker.Settings);
        Assert.Equal(3u, await _broker.MessageCountAsync("raw-shard_error"));
        var reasons = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var headers = await _broker.TakeHeadersAsync("raw-shard_error");
            Assert.NotNull(headers);
            reasons.Add(System.Text.Encoding.UTF8.GetString((byte[])headers["MT-Fault-Message"]!));
        }
        Assert.Contains(reasons, r => r.Contains("checksum mismatch"));
        Assert.All(reasons, r => Assert.Contains("rejected", r));
    }

    public void Dispose()
    {
        _broker.Dispose();
        Directory.Delete(_root, recursive: true);
    }
}
