using MassTransit;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Runtime;

namespace Pipeline.Hosting;

/// <summary>
/// Runs one barrier stage for every run that asks for it: skips a run the ledger has finished, reads the input
/// stage's shards from the ledger, runs the stage, records its result, and announces it. A crash before the record
/// leaves the run unfinished, so the request (sent again by the coordinator) runs it again.
/// </summary>
public sealed class RunStageConsumer<TStage>(TStage stage, Ledger ledger, ILogger<RunStageConsumer<TStage>> logger) : IConsumer<RunStageRequested>
    where TStage : class, IRunStage
{
    public async Task Consume(ConsumeContext<RunStageRequested> context)
    {
        var request = context.Message;
        if (request.Stage != TStage.Name) return;
        var input = RunStages.InputId(request.RunId);
        var shards = ledger.Artifacts.Shards(request.RunId, request.InputStage);
        if (ledger.Artifacts.IsProcessed(TStage.Name, input))
            logger.LogInformation("{Stage}: run {Run} already done; request ignored", TStage.Name, request.RunId);
        else
        {
            var stats = await stage.RunAsync(request.RunId, shards, request.SettingsJson, context.CancellationToken);
            ledger.Artifacts.CompleteInput(TStage.Name, input, request.RunId, [], stats);
            logger.LogInformation("{Stage}: run {Run} done over {Shards} {Input} shard(s)", TStage.Name, request.RunId, shards.Count, request.InputStage);
        }
        await context.PublishBounded(new StageCompleted(request.RunId, TStage.Name, shards.Count), context.CancellationToken);
    }
}

public static class RunStageRegistration
{
    /// <summary>
    /// Hosts a barrier stage on this service: its own endpoint (every barrier request reaches every barrier stage's
    /// queue, and each takes only its own), one run at a time.
    /// </summary>
    public static void AddRunStage<TStage>(this IBusRegistrationConfigurator bus) where TStage : class, IRunStage
    {
        bus.TryAddSingleton<TStage>();
        bus.AddConsumer<RunStageConsumer<TStage>>().Endpoint(e =>
        {
            e.Name = $"stage-{TStage.Name}";
            e.ConcurrentMessageLimit = 1;
        });
    }
}
