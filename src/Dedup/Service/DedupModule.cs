using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
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
        // The embedding semantic dedup's embed stage makes: hashed, or a checkpoint's (docs/dedup.md).
        services.AddSingleton(provider => new EmbeddingSource(provider.GetRequiredService<Storage.ShardStore>(), provider.GetRequiredService<Ledger>(),
            provider.GetRequiredService<PipelineOptions>().SemanticDedup.Checkpoint));
        // Each run's index has one writer at a time across every dedup service on this deployment (a lease in the
        // ledger); with an object store each host has a folder of its own, so the index is shared through the store.
        services.AddSingleton(provider => new ShardDeduplicator(provider.GetRequiredService<DedupOptions>(),
            provider.GetRequiredService<Storage.ShardStore>(), provider.GetRequiredService<Ledger>()));
    }

    // Index updates are ordered: one shard at a time, whatever the configured limit.
    public void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits)
    {
        bus.AddShardStage<ShardDeduplicator, CleanShardCreated, DedupShardCreated>(limits, m => m.Shard, (shard, _) => new(shard), ordered: true);
        // Semantic dedup, when the run asks for it: embeddings per shard (in parallel, on every dedup service), then
        // the decisions once over the run.
        bus.AddShardStage<ShardEmbedder, EmbedShardRequested, EmbeddingShardCreated>(limits, m => m.Shard, (shard, _) => new(shard));
        bus.AddRunStage<SemanticDedupStage>();
    }
}
