using Microsoft.Extensions.DependencyInjection;
using Pipeline.Runtime;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Pipeline.Hosting;

/// <summary>Where a process's metrics and traces go (Pipeline:Telemetry); nothing by default.</summary>
public sealed class TelemetryOptions
{
    /// <summary>The port of a Prometheus scrape endpoint (/metrics) this process serves; none by default.</summary>
    [System.ComponentModel.DataAnnotations.Range(1, 65535)]
    public int? PrometheusPort { get; set; }

    /// <summary>
    /// The address the endpoint listens on: loopback by default; "+" for every address (in a container, so that a
    /// Prometheus on the same network can scrape it).
    /// </summary>
    public string PrometheusHost { get; set; } = "127.0.0.1";

    /// <summary>An OTLP collector (http://collector:4317) that receives traces and metrics; none by default.</summary>
    public string? OtlpEndpoint { get; set; }
}

/// <summary>
/// OpenTelemetry for a process: the pipeline's meter (<see cref="PipelineMetrics"/>) and MassTransit's, and
/// MassTransit's traces (a shard's publish and every consume after it share one trace, crawl to tokenize; the trace id
/// is in every log line written inside one).
/// </summary>
public static class PipelineTelemetry
{
    // MassTransit's ActivitySource and Meter are both named "MassTransit".
    private const string MassTransitSource = "MassTransit";

    /// <summary>
    /// Registers OpenTelemetry for a process: the pipeline's and MassTransit's meters and MassTransit's traces, with a
    /// Prometheus endpoint and OTLP export only where configured.
    /// </summary>
    public static void AddPipelineTelemetry(this IServiceCollection services, TelemetryOptions options, string serviceName)
    {
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(serviceName))
            // Always traced, so that log lines carry the trace id; exported only to a configured collector.
            .WithTracing(tracing =>
            {
                tracing.AddSource(MassTransitSource);
                if (options.OtlpEndpoint is { } otlp) tracing.AddOtlpExporter(o => o.Endpoint = new Uri(otlp));
            })
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(PipelineMetrics.MeterName, MassTransitSource);
                if (options.PrometheusPort is { } port)
                    metrics.AddPrometheusHttpListener(o =>
                    {
                        (o.Host, o.Port) = (options.PrometheusHost, port);
                        // Every scrape reads the current values (the default caches a response for 300 ms).
                        o.ScrapeResponseCacheDurationMilliseconds = 0;
                    });
                if (options.OtlpEndpoint is { } otlp) metrics.AddOtlpExporter(o => o.Endpoint = new Uri(otlp));
            });
    }
}
