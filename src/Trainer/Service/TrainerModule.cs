using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Runtime;

namespace Pipeline.Trainer;

public sealed class TrainerModule : IStageModule
{
    public string Name => "trainer";

    public void AddServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddLedgerJobWorker<StartTraining, TrainingWorker>();
        // A misspelled key (say "Target") would otherwise be ignored and the rule would release nothing.
        var release = StrictConfig.Bind<ReleaseOptions>(configuration, ReleaseOptions.Section);
        release.Validate();
        services.AddSingleton(release);
        services.AddLedgerJobWorker<ReleaseRequested, ReleaseWorker>();
    }

    public void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits)
    {
        bus.AddLedgerJobConsumer<StartTraining>("start-training");
        bus.AddConsumer<CancelTrainingConsumer>();
        bus.AddLedgerJobConsumer<ReleaseRequested>("release-requested");
        bus.AddConsumer<ReleaseRuleConsumer>();
    }
}

public sealed class CancelTrainingConsumer(TrainingWorker worker) : IConsumer<CancelTraining>
{
    public Task Consume(ConsumeContext<CancelTraining> context)
    {
        worker.Cancel(context.Message.RunName);
        return Task.CompletedTask;
    }
}
