using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Pipeline.Runtime;

/// <summary>
/// The pipeline's metrics (OpenTelemetry meter "Pipeline"): per stage, the shards, rows and bytes written and how long
/// each input took; for training, the last step, loss and tokens/s of each run; for evaluation, each score. Traces
/// (MassTransit's) and their export are registered by Hosting's PipelineTelemetry.
/// </summary>
public static class PipelineMetrics
{
    public const string MeterName = "Pipeline";

    private static readonly Meter Meter = new(MeterName);
    private static readonly Counter<long> Shards = Meter.CreateCounter<long>("pipeline.stage.shards", description: "Shards a stage wrote");
    private static readonly Counter<long> Rows = Meter.CreateCounter<long>("pipeline.stage.rows", description: "Rows in the shards a stage wrote");
    private static readonly Counter<long> Bytes = Meter.CreateCounter<long>("pipeline.stage.bytes", description: "Bytes of the shards a stage wrote");
    private static readonly Counter<long> Inputs = Meter.CreateCounter<long>("pipeline.stage.inputs", description: "Input shards a stage finished");
    private static readonly Histogram<double> Duration = Meter.CreateHistogram<double>("pipeline.stage.duration", "s", "Time a stage took for one input shard");

    // Gauges report the latest value per run (and task/metric), read when a reader collects.
    private static readonly ConcurrentDictionary<(string Run, string Name), (long Step, double Value)> Training = new();
    private static readonly ConcurrentDictionary<(string Run, string Task, string Metric), double> Scores = new();

    static PipelineMetrics()
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
}
