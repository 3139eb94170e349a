using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Hosting;

/// <summary>How a per-shard stage's messages look on the bus: the shard an input announcement names, and the announcement of an output.</summary>
public sealed record ShardMessages<TIn, TOut>(Func<TIn, ShardRef> InputOf, Func<ShardRef, object?, TOut> Announce);

/// <summary>
/// The one consumer of every per-shard stage: skip inputs the ledger has finished (idempotent redelivery), process,
/// announce the outputs, then record completion (<see cref="ShardStep"/>). A rejected shard is recorded as failed and
/// rethrown, so MassTransit moves it to the error queue with the reason.
/// </summary>
public sealed class ShardStageConsumer<TStage, TIn, TOut>(TStage stage, ShardMessages<TIn, TOut> messages, Ledger ledger,
    ILogger<ShardStageConsumer<TStage, TIn, TOut>> logger) : IConsumer<TIn>
    where TStage : class, IShardStage
    where TIn : class
    where TOut : class
{
    public async Task Consume(ConsumeContext<TIn> context)
    {
        var input = messages.InputOf(context.Message);
        // Readiness first: a stage that is always ready (most) costs no ledger read here; ShardStep checks done-ness.
        if (!stage.IsReadyFor(input.RunId) && !ledger.Artifacts.IsProcessed(TStage.Name, input.ShardId))
        {
            logger.LogDebug("{Stage}: run {Run} is not ready for it yet; shard {Shard} waits", TStage.Name, input.RunId, input.ShardId);
            return;
        }
        await RunAsync(stage, ledger, logger, input, context, (output, stats) => messages.Announce(output, stats), context.CancellationToken);
    }

    /// <summary>
    /// Runs one input of the stage and says so: the consumer's work, also used by a stage's other consumers (the
    /// tokenizer's training takes up the shards that waited for it).
    /// </summary>
    public static async Task RunAsync(TStage stage, Ledger ledger, ILogger logger, ShardRef input, IPublishEndpoint bus,
        Func<ShardRef, object?, TOut> announce, CancellationToken ct)
    {
        StageResult? result;
        try
        {
            // Announce first, record completion last (ShardStep): if the broker is away and a publish fails, the retry
            // or redelivery finds the input unfinished and does it again, so no announcement is ever lost.
            result = await new ShardStep(ledger, TStage.Name).RunAsync(input, async token =>
            {
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                var processed = await stage.ProcessAsync(input, token);
                PipelineMetrics.InputDuration(TStage.Name, System.Diagnostics.Stopwatch.GetElapsedTime(started));
                return processed;
            }, (output, stats) => bus.PublishBounded(announce(output, stats), ct), ct, processed => stage.AfterRecordAsync(input, processed, ct));
        }
        catch (ShardRejectedException e)
        {
            logger.LogError("{Stage}: {Reason}", TStage.Name, e.Message);
            ledger.Artifacts.FailInput(TStage.Name, input.ShardId, input.RunId, e.Message);
            throw;
        }
        if (result is null)
        {
            logger.LogInformation("{Stage}: shard {Shard} already processed; redelivery ignored", TStage.Name, input.ShardId);
            return;
        }
        logger.LogInformation("{Stage}: shard {Shard} done, {Outputs} shard(s) written", TStage.Name, input.ShardId, result.Outputs.Count);
        // After the record: a coordinator woken by this event finds the input done in the ledger. Losing it costs
        // nothing but a later wake-up; the ledger, not the event, is the truth.
        await bus.PublishBounded(new InputProcessed(input.RunId, TStage.Name, input.ShardId, result.Outputs.Count), ct);
    }
}

public static class ShardStageRegistration
{
    /// <summary>
    /// Hosts a per-shard stage on this service: its consumer on the endpoint named after its input message
    /// (RawShardCreated: raw-shard), the names the services have always used.
    /// </summary>
    /// <param name="ordered">One shard at a time, whatever the configured limit (dedup's index updates, the tokenizer's manifest).</param>
    public static void AddShardStage<TStage, TIn, TOut>(this IBusRegistrationConfigurator bus, StageLimits limits,
        Func<TIn, ShardRef> inputOf, Func<ShardRef, object?, TOut> announce, bool ordered = false)
        where TStage : class, IShardStage where TIn : class where TOut : class
    {
        bus.TryAddSingleton<TStage>();
        bus.AddSingleton(new ShardMessages<TIn, TOut>(inputOf, announce));
        bus.AddConsumer<ShardStageConsumer<TStage, TIn, TOut>>().Endpoint(e =>
        {
            e.Name = KebabCaseEndpointNameFormatter.Instance.SanitizeName(typeof(TIn).Name.Replace("Created", "", StringComparison.Ordinal));
            if (ordered)
            {
                e.ConcurrentMessageLimit = 1;
                e.PrefetchCount = limits.PrefetchCount;
            }
            else e.Apply(limits);
        });
    }
}
