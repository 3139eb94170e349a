using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;

namespace Pipeline.Trainer;

public sealed class TrainerModule : IStageModule
{
    public string Name => "trainer";

    public void AddServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddLedgerJobWorker<StartTraining, TrainingWorker>();
    }

    public void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits)
    {
        bus.AddLedgerJobConsumer<StartTraining>("start-training");
        bus.AddConsumer<CancelTrainingConsumer>();
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
