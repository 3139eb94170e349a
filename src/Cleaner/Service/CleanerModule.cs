using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Runtime;

namespace Pipeline.Cleaner;

public sealed class CleanerModule : IStageModule
{
    public string Name => "cleaner";

    public void AddServices(IServiceCollection services, IConfiguration configuration)
    {
        var options = StrictConfig.Bind<CleanerOptions>(configuration, CleanerOptions.Section);
        // Built now, so a bad recipe or filter setting stops the service at start, naming it, not at the first shard.
        _ = new DocumentCleaner(options, ShardCleaner.LoadNgWords(options.NgWordsFile));
        services.AddSingleton(options);
        services.AddSingleton<ShardCleaner>();
    }

    public void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits) =>
        bus.AddShardStage<ShardCleaner, RawShardCreated, CleanShardCreated>(limits, m => m.Shard, (shard, _) => new(shard));
}
