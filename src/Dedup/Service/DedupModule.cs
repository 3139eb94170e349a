using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Runtime;

namespace Pipeline.Dedup;

public sealed class DedupModule : IStageModule
{
    public string Name => "dedup";

    public void AddServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(StrictConfig.Bind<DedupOptions>(configuration, DedupOptions.Section));
        // Each run's index has one writer at a time across every dedup service on this deployment (a lease in the
        // ledger); with an object store each host has a folder of its own, so the index is shared through the store.
        services.AddSingleton(provider => new ShardDeduplicator(provider.GetRequiredService<DedupOptions>(),
            provider.GetRequiredService<Storage.ShardStore>(), provider.GetRequiredService<RunLedger>()));
    }

    // Index updates are ordered: one shard at a time, whatever the configured limit.
    public void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits) =>
        bus.AddConsumer<CleanShardConsumer>().Endpoint(e =>
        {
            e.ConcurrentMessageLimit = 1;
            e.PrefetchCount = limits.PrefetchCount;
        });
}

public sealed class CleanShardConsumer(ShardDeduplicator deduplicator, RunLedger ledger, ILogger<CleanShardConsumer> logger)
    : ShardConsumer<CleanShardCreated, DedupShardCreated>(ledger, logger)
{
    protected override string Stage => ShardDeduplicator.Stage;

    protected override ShardRef InputOf(CleanShardCreated message) => message.Shard;

    protected override Task<StageResult> ProcessAsync(ShardRef input, CancellationToken ct) => deduplicator.ProcessAsync(input, ct);

    protected override DedupShardCreated Announce(ShardRef output) => new(output);
}
