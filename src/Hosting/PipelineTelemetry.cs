using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
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
/// The pipeline's metrics (OpenTelemetry meter "Pipeline"): per stage, the shards, rows and bytes written and how long
/// each input took; for training, the last step, loss and tokens/s of each run; for evaluation, each score. Traces
/// are MassTransit's own (a shard's publish and every consume after it share one trace, crawl to tokenize), and the
/// trace id is in every log line written inside one.
/// </summary>
public static class PipelineTelemetry
{
    public const string MeterName = "Pipeline";

    // MassTransit's ActivitySource and Meter are both named "MassTransit".
    private const string MassTransitSource = "MassTransit";

    private static readonly Meter Meter = new(MeterName);
    private static readonly Counter<long> Shards = Meter.CreateCounter<long>("pipeline.stage.shards", description: "Shards a stage wrote");
    private static readonly Counter<long> Rows = Meter.CreateCounter<long>("pipeline.stage.rows", description: "Rows in the shards a stage wrote");
    private static readonly Counter<long> Bytes = Meter.CreateCounter<long>("pipeline.stage.bytes", description: "Bytes of the shards a stage wrote");
    private static readonly Counter<long> Inputs = Meter.CreateCounter<long>("pipeline.stage.inputs", description: "Input shards a stage finished");
    private static readonly Histogram<double> Duration = Meter.CreateHistogram<double>("pipeline.stage.duration", "s", "Time a stage took for one input shard");

    // Gauges report the latest value per run (and task/metric), read when a reader collects.
    private static readonly ConcurrentDictionary<(string Run, string Name), (long Step, double Value)> Training = new();
    private static readonly ConcurrentDictionary<(string Run, string Task, string Metric), double> Scores = new();

    static PipelineTelemetry()
    {
        Meter.CreateObservableGauge("pipeline.training.step", () => Latest("loss", v => v.Step));
        Meter.CreateObservableGauge("pipeline.training.loss", () => Latest("loss", v => v.Value));
        Meter.CreateObservableGauge("pipeline.training.tokens_per_second", () => Latest("tokens_per_second", v => v.Value));
        Meter.CreateObservableGauge("pipeline.evaluation.score", () => Scores.Select(kv =>
            new Measurement<double>(kv.Value, new("run", kv.Key.Run), new("task", kv.Key.Task), new("metric", kv.Key.Metric))));
    }

    private static IEnumerable<Measurement<double>> Latest(string name, Func<(long Step, double Value), double> pick) =>
        Training.Where(kv => kv.Key.Name == name).Select(kv => new Measurement<double>(pick(kv.Value), new KeyValuePair<string, object?>("run", kv.Key.Run)));

    /// <summary>A stage finished an input shard, writing <paramref name="outputs"/>.</summary>
    public static void InputCompleted(string stage, IReadOnlyList<Contracts.V1.ShardRef> outputs)
    {
        var tag = new KeyValuePair<string, object?>("stage", stage);
        Inputs.Add(1, tag);
        Shards.Add(outputs.Count, tag);
        Rows.Add(outputs.Sum(o => o.Rows), tag);
        Bytes.Add(outputs.Sum(o => o.Bytes), tag);
    }

    public static void InputDuration(string stage, TimeSpan elapsed) => Duration.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("stage", stage));

    /// <summary>A training or alignment metric at a step (the ledger's metrics table).</summary>
    public static void TrainingMetric(string run, long step, string name, double value)
    {
        if (Training.TryGetValue((run, name), out var last) && last.Step > step) return;
        Training[(run, name)] = (step, value);
    }

    public static void Score(string run, string task, string metric, double value) => Scores[(run, task, metric)] = value;

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
                metrics.AddMeter(MeterName, MassTransitSource);
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
