using MassTransit;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;

namespace Pipeline.Cli;

/// <summary>
/// Wakes the run coordinator when something it waits for may have changed: the stages' events arrive here, and the
/// coordinator re-reads the ledger (the truth) on each, instead of polling it. A wake-up with nothing new costs one
/// ledger read; a lost one costs a slow re-check (<see cref="RunCoordinator.Recheck"/>), never the run.
/// </summary>
public sealed class RunSignals
{
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes at the next event. Take it before checking the ledger, so an event in between is not missed.</summary>
    public Task Next => Volatile.Read(ref _next).Task;

    public void Notify() =>
        Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
}

/// <summary>
/// The coordinator's side of the stage events: every event a stage publishes about a run's progress, on a temporary
/// endpoint of the coordinating process (like <see cref="RunFaultConsumer"/>), so each coordinator hears all of them.
/// </summary>
public sealed class RunEventConsumer(RunSignals signals, ILogger<RunEventConsumer> logger) :
    IConsumer<InputProcessed>, IConsumer<StageCompleted>, IConsumer<TokenizerTrained>, IConsumer<TokenShardCreated>,
    IConsumer<TrainingProgress>, IConsumer<TrainingFinished>, IConsumer<EvaluationCompleted>, IConsumer<CheckpointEvaluated>
{
    public Task Consume(ConsumeContext<InputProcessed> context) => Wake();

    public Task Consume(ConsumeContext<StageCompleted> context) => Wake();

    public Task Consume(ConsumeContext<TokenizerTrained> context) => Wake();

    public Task Consume(ConsumeContext<TokenShardCreated> context) => Wake();

    public Task Consume(ConsumeContext<TrainingProgress> context)
    {
        var m = context.Message;
        logger.LogDebug("run: {Run} step {Step}/{MaxSteps}, loss {Loss:F3}, {TokensPerSecond:N0} tok/s", m.RunName, m.Step, m.MaxSteps, m.Loss, m.TokensPerSecond);
        return Task.CompletedTask;
    }

    public Task Consume(ConsumeContext<TrainingFinished> context) => Wake();

    public Task Consume(ConsumeContext<EvaluationCompleted> context)
    {
        var m = context.Message;
        if (m.Error is not null)
        {
            logger.LogWarning("run: {Checkpoint}: {Task} failed: {Error}", m.CheckpointUri, m.Task, m.Error);
        }
        return Wake();
    }

    public Task Consume(ConsumeContext<CheckpointEvaluated> context) => Wake();

    private Task Wake()
    {
        signals.Notify();
        return Task.CompletedTask;
    }
}
