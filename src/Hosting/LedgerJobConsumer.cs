using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Pipeline.Hosting;

/// <summary>
/// Hands a job request (StartTraining, CrawlRequested, AlignmentRequested) to its <see cref="LedgerJobWorker{TRequest}"/>
/// and acknowledges at once; a refused request (already running or completed) is logged.
/// </summary>
public sealed class LedgerJobConsumer<TRequest>(LedgerJobWorker<TRequest> worker, ILogger<LedgerJobConsumer<TRequest>> logger)
    : IConsumer<TRequest> where TRequest : class
{
    public Task Consume(ConsumeContext<TRequest> context)
    {
        if (worker.TryStart(context.Message) is { } refusal) logger.LogInformation("{Refusal}", refusal);
        return Task.CompletedTask;
    }
}

public static class LedgerJobRegistration
{
    /// <summary>Registers a job worker (as itself, as the worker of its request type and as a hosted service).</summary>
    public static void AddLedgerJobWorker<TRequest, TWorker>(this IServiceCollection services)
        where TRequest : class where TWorker : LedgerJobWorker<TRequest>
    {
        services.AddSingleton<TWorker>();
        services.AddSingleton<LedgerJobWorker<TRequest>>(sp => sp.GetRequiredService<TWorker>());
        services.AddHostedService(sp => sp.GetRequiredService<TWorker>());
    }

    /// <summary>
    /// The request consumer of a job worker, on the queue its own consumer class used to have (<paramref name="queue"/>),
    /// so deployments and other processes see the same queue names.
    /// </summary>
    public static IConsumerRegistrationConfigurator<LedgerJobConsumer<TRequest>> AddLedgerJobConsumer<TRequest>(
        this IBusRegistrationConfigurator bus, string queue, StageLimits? limits = null) where TRequest : class
    {
        var consumer = bus.AddConsumer<LedgerJobConsumer<TRequest>>();
        consumer.Endpoint(e =>
        {
            e.Name = queue;
            if (limits is not null) e.Apply(limits);
        });
        return consumer;
    }
}
