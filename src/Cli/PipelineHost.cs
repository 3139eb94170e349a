using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Pipeline.Hosting;
using Pipeline.Runtime;

namespace Pipeline.Cli;

/// <summary>Builds a host for some stages, configured as every command is (<see cref="Commands.PipelineContext"/>).</summary>
public static class PipelineHost
{
    /// <param name="coordinatesRuns">This process drives runs (`pipeline run`): it listens for the stages' faults.</param>
    public static IHost Build(IEnumerable<IStageModule> modules, IDictionary<string, string?> overrides, bool quiet, bool coordinatesRuns = false)
    {
        var builder = Host.CreateApplicationBuilder();
        // The one configuration chain of every command (Commands.PipelineContext).
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddConfiguration(Commands.PipelineContext.LoadConfiguration(overrides));
        // SIGINT/SIGTERM: services get this long to stop their jobs (within the CLI's 25 s termination bound).
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));
        builder.Logging.ClearProviders();
        // Colours only on a terminal (the default) and never with NO_COLOR (no-color.org).
        // Inside a trace (a message being consumed) a line carries its trace and span ids, so a shard's lines can be
        // found across services.
        builder.Logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.IncludeScopes = true;
            o.TimestampFormat = "HH:mm:ss ";
            if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"))) o.ColorBehavior = Microsoft.Extensions.Logging.Console.LoggerColorBehavior.Disabled;
        });
        builder.Logging.SetMinimumLevel(quiet ? LogLevel.Warning : LogLevel.Information);
        builder.Logging.AddFilter("MassTransit", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        // A coordinator learns of stage faults on a temporary endpoint of its own (a unique instance name), so each
        // coordinator hears every fault and none of them takes another's.
        // It also hears the stages' progress events there, and advances the run on them (RunSignals).
        builder.Services.AddSingleton<RunSignals>();
        builder.Services.AddSingleton<RunFaults>();
        var instance = Guid.NewGuid().ToString("N")[..12];
        builder.Services.AddPipeline(builder.Configuration, modules, coordinatesRuns
            ? bus =>
            {
                bus.AddConsumer<RunFaultConsumer>().Endpoint(e => (e.Temporary, e.InstanceId) = (true, instance));
                bus.AddConsumer<RunEventConsumer>().Endpoint(e => (e.Temporary, e.InstanceId) = (true, instance));
            }
            : null);
        return builder.Build();
    }

    public static IBus Bus(this IHost host) => host.Services.GetRequiredService<IBus>();

    /// <summary>
    /// Checks the ledger, bucket and broker (<see cref="StartupCheck"/>), starts the host, and says in one line that
    /// it is ready and which queues it consumes.
    /// </summary>
    public static async Task StartCheckedAsync(this IHost host, string what, CancellationToken ct)
    {
        var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("pipeline");
        await StartupCheck.RunAsync(host.Services, logger, ct);
        await host.StartAsync(ct);
        var options = host.Services.GetRequiredService<PipelineOptions>();
        var queues = host.Services.GetRequiredService<ReadyEndpoints>().Addresses.Select(a => a.AbsolutePath.Trim('/').Split('/')[^1]).Where(q => !q.StartsWith("vm_", StringComparison.Ordinal) && !q.Contains("_bus_")).Order();
        logger.LogInformation("{What} ready on {Transport}, ledger {Ledger}, storage {Storage}; consuming: {Queues}", what, options.Transport,
            host.Services.GetRequiredService<Ledger>().Location, host.Services.GetRequiredService<Pipeline.Storage.ShardStore>().Describe(),
            string.Join(", ", queues) is { Length: > 0 } list ? list : "none");
    }
}
