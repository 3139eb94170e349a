using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
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
        bus.AddConsumer<RawShardConsumer>().Endpoint(e => e.Apply(limits));
}

public sealed class RawShardConsumer(ShardCleaner cleaner, RunLedger ledger, ILogger<RawShardConsumer> logger)
    : ShardConsumer<RawShardCreated, CleanShardCreated>(ledger, logger)
{
    protected override string Stage => ShardCleaner.Stage;

    protected override ShardRef InputOf(RawShardCreated message) => message.Shard;

    protected override Task<StageResult> ProcessAsync(ShardRef input, CancellationToken ct) => cleaner.ProcessAsync(input, ct);

    protected override CleanShardCreated Announce(ShardRef output) => new(output);
}
