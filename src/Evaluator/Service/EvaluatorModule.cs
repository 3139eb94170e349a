using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Quartz;

namespace Pipeline.Evaluator;

public sealed class EvaluatorModule : IStageModule
{
    public string Name => "evaluator";

    public void AddServices(IServiceCollection services, IConfiguration configuration)
    {
        var options = StrictConfig.Bind<EvaluatorOptions>(configuration, EvaluatorOptions.Section);
        services.AddSingleton(options);
        services.AddSingleton<CheckpointEvaluator>();
        if (options.Schedules.Count == 0) return;
        // Cron sweeps: Quartz fires the job, the job publishes an EvaluateRequested, the sweep consumer does the work.
        services.AddQuartz(q =>
        {
            foreach (var schedule in options.Schedules)
            {
                if (!CronExpression.TryParse(schedule.Cron, out _))
                    throw new ArgumentException($"Pipeline:Evaluator:Schedules '{schedule.Name}': '{schedule.Cron}' is not a valid Quartz cron expression");
                q.ScheduleJob<ScheduledSweepJob>(
                    trigger => trigger.WithIdentity(schedule.Name + "-trigger").WithCronSchedule(schedule.Cron),
                    job => job.WithIdentity(schedule.Name).UsingJobData(ScheduledSweepJob.ScheduleName, schedule.Name));
            }
        });
        services.AddQuartzHostedService(o => o.WaitForJobsToComplete = false);
    }

    // One evaluation at a time: a bounded worker that never takes more than its share of the machine from training.
    public void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits)
    {
        bus.AddConsumer<CheckpointSavedConsumer>().Endpoint(e => e.ConcurrentMessageLimit = 1);
        bus.AddConsumer<EvaluateRequestedConsumer>().Endpoint(e => e.ConcurrentMessageLimit = 1);
        bus.AddRunStage<ContaminationStage>();
    }
}

/// <summary>
/// Scores every new checkpoint on the validation split and the configured tasks, then marks it evaluated in the
/// ledger (with the tasks that failed), so a run waiting for its scores knows when there are no more to come.
/// </summary>
public sealed class CheckpointSavedConsumer(CheckpointEvaluator evaluator, Ledger ledger) : IConsumer<CheckpointSaved>
{
    public async Task Consume(ConsumeContext<CheckpointSaved> context)
    {
        var message = context.Message;
        if (message is { BaseCheckpoint: { } baseCheckpoint, Method: { } method })
            LineageStore.Record(ledger.Documents, new RunLineage(message.RunName, baseCheckpoint, method, message.RewardModel));
        // A reward model scores text; it is not a language model to measure (its lineage is recorded above).
        var outcomes = message.Method?.StartsWith("reward", StringComparison.Ordinal) == true ? []
            : await evaluator.EvaluateAsync(message.Uri, message.RunId, evaluator.ConfiguredTasks, includeValidation: true, force: false, context.CancellationToken);
        foreach (var outcome in outcomes)
            await context.PublishBounded(new EvaluationCompleted(outcome.RunName, outcome.Step, outcome.CheckpointUri, outcome.Task, outcome.Version, outcome.Metrics, outcome.Error));
        var failed = outcomes.Where(o => o.Error is not null).ToList();
        ledger.Documents.Set(CheckpointEvaluator.EvaluatedKey(message.Uri), System.Text.Json.JsonSerializer.Serialize(failed.Select(o => new { o.Task, o.Error })));
        await context.PublishBounded(new CheckpointEvaluated(message.RunId, message.RunName, message.Uri, failed.Select(o => o.Task).ToList()));
    }
}

/// <summary>
/// A sweep over runs (all with checkpoints when none are named), their checkpoints (or the latest only) and tasks
/// (task files; the configured ones when none are named). Pairs already scored are skipped unless Force is set.
/// </summary>
public sealed class EvaluateRequestedConsumer(CheckpointEvaluator evaluator, ILogger<EvaluateRequestedConsumer> logger) : IConsumer<EvaluateRequested>
{
    public async Task Consume(ConsumeContext<EvaluateRequested> context)
    {
        var request = context.Message;
        var tasks = evaluator.ConfiguredTasks;
        if (request.Tasks.Count > 0)
        {
            var requested = new List<string>();
            foreach (var task in request.Tasks) requested.Add(await evaluator.ResolveRequestedTaskAsync(task, context.CancellationToken));
            tasks = requested;
        }
        var checkpoints = request.CheckpointUris.ToList();
        if (checkpoints.Count == 0)
        {
            foreach (var run in request.RunNames.Count > 0 ? request.RunNames : await evaluator.RunsWithCheckpointsAsync(context.CancellationToken))
            {
                var all = await evaluator.CheckpointsOfAsync(run, context.CancellationToken);
                checkpoints.AddRange(request.LatestOnly ? all.TakeLast(1) : all);
            }
        }
        logger.LogInformation("eval: sweep over {Checkpoints} checkpoints and {Tasks} tasks", checkpoints.Count, tasks.Count);
        foreach (var checkpoint in checkpoints)
            foreach (var outcome in await evaluator.EvaluateAsync(checkpoint, null, tasks, includeValidation: false, request.Force, context.CancellationToken))
                await context.PublishBounded(new EvaluationCompleted(outcome.RunName, outcome.Step, outcome.CheckpointUri, outcome.Task, outcome.Version, outcome.Metrics, outcome.Error));
    }
}

/// <summary>The Quartz job of a cron schedule: publishes the schedule's sweep.</summary>
[DisallowConcurrentExecution]
public sealed class ScheduledSweepJob(IBus bus, EvaluatorOptions options) : IJob
{
    public const string ScheduleName = "schedule";

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var name = context.MergedJobDataMap.GetString(ScheduleName);
        var schedule = options.Schedules.First(s => s.Name == name);
        await bus.PublishBounded(new EvaluateRequested(schedule.Runs, [], schedule.Tasks, schedule.LatestOnly, Force: false), cancellationToken);
    }
}
