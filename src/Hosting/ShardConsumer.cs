using MassTransit;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Storage;
using Pipeline.Runtime;

namespace Pipeline.Hosting;

/// <summary>
/// The shape every shard-in, shards-out consumer shares: skip inputs the ledger has finished (idempotent
/// redelivery), process, announce the outputs, then record outputs and completion in one ledger transaction.
/// A rejected shard is recorded as failed and rethrown, so MassTransit moves it to the error queue with the reason.
/// </summary>
public abstract class ShardConsumer<TIn, TOut>(RunLedger ledger, ILogger logger) : IConsumer<TIn>
    where TIn : class
    where TOut : class
{
    protected abstract string Stage { get; }

    protected abstract ShardRef InputOf(TIn message);

    protected abstract Task<StageResult> ProcessAsync(ShardRef input, CancellationToken ct);

    protected abstract TOut Announce(ShardRef output);

    public async Task Consume(ConsumeContext<TIn> context)
    {
        var input = InputOf(context.Message);
        StageResult? result;
        try
        {
            // Announce first, record completion last (ShardStep): if the broker is away and a publish fails, the retry
            // or redelivery finds the input unfinished and does it again, so no announcement is ever lost.
            result = await new ShardStep(ledger, Stage).RunAsync(input, async ct =>
            {
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                var processed = await ProcessAsync(input, ct);
                PipelineMetrics.InputDuration(Stage, System.Diagnostics.Stopwatch.GetElapsedTime(started));
                return processed;
            }, (output, _) => context.PublishBounded(Announce(output), context.CancellationToken), context.CancellationToken);
        }
        catch (ShardRejectedException e)
        {
            logger.LogError("{Stage}: {Reason}", Stage, e.Message);
            ledger.FailInput(Stage, input.ShardId, input.RunId, e.Message);
            throw;
        }
        if (result is null)
        {
            logger.LogInformation("{Stage}: shard {Shard} already processed; redelivery ignored", Stage, input.ShardId);
            return;
        }
        logger.LogInformation("{Stage}: shard {Shard} done, {Outputs} shard(s) written", Stage, input.ShardId, result.Outputs.Count);
        // After the record: a coordinator woken by this event finds the input done in the ledger. Losing it costs
        // nothing but a later wake-up; the ledger, not the event, is the truth.
        await context.PublishBounded(new InputProcessed(input.RunId, Stage, input.ShardId, result.Outputs.Count), context.CancellationToken);
    }
}
