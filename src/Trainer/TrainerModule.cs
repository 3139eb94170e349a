using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;

namespace Pipeline.Trainer;

public sealed class TrainerModule : IStageModule
{
    public string Name => "trainer";

    public void AddServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<TrainingWorker>();
        services.AddHostedService(sp => sp.GetRequiredService<TrainingWorker>());
    }

    public void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits)
    {
        bus.AddConsumer<StartTrainingConsumer>();
        bus.AddConsumer<CancelTrainingConsumer>();
    }
}

/// <summary>Hands the run to the worker and acknowledges at once.</summary>
public sealed class StartTrainingConsumer(TrainingWorker worker, ILogger<StartTrainingConsumer> logger) : IConsumer<StartTraining>
{
    public Task Consume(ConsumeContext<StartTraining> context)
    {
        if (worker.TryStart(context.Message) is { } refusal) logger.LogWarning("train: {Refusal}", refusal);
        return Task.CompletedTask;
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
