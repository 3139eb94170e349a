using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Storage;
using Pipeline.Runtime;

namespace Pipeline.Hosting;

public static class BusSetup
{
    /// <summary>
    /// Registers options, the shard store, the run ledger and MassTransit with the given stage modules' consumers,
    /// on the transport that configuration selects.
    /// </summary>
    public static IServiceCollection AddPipeline(this IServiceCollection services, IConfiguration configuration,
        IEnumerable<IStageModule> modules, Action<IBusRegistrationConfigurator>? extra = null)
    {
        var options = StrictConfig.BindRoot<PipelineOptions>(configuration, PipelineOptions.Section, PipelineOptions.StageSections);
        services.AddSingleton(options);
        services.AddSingleton(_ => options.Storage.Open(options.DataRoot));
        services.AddSingleton(_ => Ledger.Open(options.DataRoot, options.Ledger.ConnectionString));

        var moduleList = modules.ToList();
        foreach (var module in moduleList)
            module.AddServices(services, configuration);
        services.AddPipelineTelemetry(options.Telemetry, moduleList.Count == 0 ? "pipeline-coordinator" : "pipeline-" + string.Join('+', moduleList.Select(m => m.Name)));
        if (options.HealthFile is not null)
        {
            services.AddHealthChecks(); // MassTransit adds its bus and endpoint checks to these
            services.AddHostedService<HealthFileWriter>();
        }

        // Start returns only when every receive endpoint is bound: on a fresh broker a message published earlier
        // would reach an exchange with no queue bound yet and be dropped.
        services.Configure<MassTransitHostOptions>(o =>
        {
            o.WaitUntilStarted = true;
            o.StartTimeout = TimeSpan.FromMinutes(2);
            o.StopTimeout = TimeSpan.FromSeconds(15);
        });
        services.AddSingleton<ReadyEndpoints>();
        services.AddReceiveEndpointObserver(sp => sp.GetRequiredService<ReadyEndpoints>());
        services.AddMassTransit(bus =>
        {
            // MassTransit 8 reports usage telemetry to a third-party host unless told not to. Nothing leaves the
            // machine that the user did not configure (seeds, broker, storage, judge), so it is off for every bus.
            bus.DisableUsageTelemetry();
            bus.SetKebabCaseEndpointNameFormatter();
            foreach (var module in moduleList)
                module.AddConsumers(bus, options.LimitsFor(module.Name));
            extra?.Invoke(bus);

            if (options.Transport == TransportKind.RabbitMq)
            {
                var rabbit = options.RabbitMq;
                if (string.IsNullOrEmpty(rabbit.Username) || rabbit.Password is null)
                    throw new InvalidOperationException(
                        "Pipeline:Transport is RabbitMq but no credentials are configured: set Pipeline:RabbitMq:Username and " +
                        "Pipeline:RabbitMq:Password (or PIPELINE__RABBITMQ__USERNAME / PIPELINE__RABBITMQ__PASSWORD).");
                bus.UsingRabbitMq((context, cfg) =>
                {
                    cfg.Host(rabbit.Host, rabbit.Port, rabbit.VirtualHost, h =>
                    {
                        h.Username(rabbit.Username);
                        h.Password(rabbit.Password);
                    });
                    ConfigureCommon(cfg, options);
                    cfg.ConfigureEndpoints(context);
                });
            }
            else
            {
                bus.UsingInMemory((context, cfg) =>
                {
                    ConfigureCommon(cfg, options);
                    cfg.ConfigureEndpoints(context);
                });
            }
        });
        return services;
    }

    private static void ConfigureCommon(IBusFactoryConfigurator cfg, PipelineOptions options)
    {
        // A score can be infinite (the perplexity of an untrained model) and a loss NaN: messages carry them as the
        // literals "Infinity" and "NaN" rather than failing to serialize (which lost the checkpoint's evaluation).
        cfg.ConfigureJsonSerializerOptions(json =>
        {
            json.NumberHandling |= System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals;
            return json;
        });
        cfg.UseMessageRetry(r =>
        {
            r.Exponential(options.Retry.Limit, options.Retry.MinInterval, options.Retry.MaxInterval, options.Retry.MinInterval);
            // A bad shard reference never becomes good: straight to the error queue with the reason.
            r.Ignore<ShardRejectedException>();
            r.Ignore<ArgumentException>();
        });
    }
}
