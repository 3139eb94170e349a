using System.Collections.Concurrent;
using MassTransit;
using Pipeline.Contracts.V1;
using Pipeline.Storage;

namespace Pipeline.Cli;

/// <summary>
/// The first fatal stage error of each run, as the coordinator learns it from MassTransit's Fault&lt;T&gt; events
/// (published when a consumer gives up on a message, on whatever host it runs). A rejected shard is not fatal: it is
/// recorded as that shard's failure and the run goes on without it.
/// </summary>
public sealed class RunFaults(RunSignals signals)
{
    private readonly ConcurrentDictionary<string, string> _byRun = new();

    public void Add(string runId, string stage, ExceptionInfo[] exceptions)
    {
        var first = exceptions.FirstOrDefault();
        if (first?.ExceptionType == typeof(ShardRejectedException).FullName) return;
        _byRun.TryAdd(runId, $"{stage} failed: {first?.Message ?? "unknown error"}");
        signals.Notify();
    }

    public string? For(string runId) => _byRun.TryGetValue(runId, out var error) ? error : null;
}

/// <summary>Feeds <see cref="RunFaults"/> from the faults of every message a run's stages consume.</summary>
public sealed class RunFaultConsumer(RunFaults faults) :
    IConsumer<Fault<CrawlRequested>>, IConsumer<Fault<RawShardCreated>>, IConsumer<Fault<CleanShardCreated>>,
    IConsumer<Fault<DedupShardCreated>>, IConsumer<Fault<TrainTokenizer>>, IConsumer<Fault<StartTraining>>,
    IConsumer<Fault<AlignmentRequested>>, IConsumer<Fault<CheckpointSaved>>, IConsumer<Fault<RunStageRequested>>
{
    public Task Consume(ConsumeContext<Fault<CrawlRequested>> c) => Add(c.Message.Message.RunId, "crawl", c.Message);
    public Task Consume(ConsumeContext<Fault<RawShardCreated>> c) => Add(c.Message.Message.Shard.RunId, "clean", c.Message);
    public Task Consume(ConsumeContext<Fault<CleanShardCreated>> c) => Add(c.Message.Message.Shard.RunId, "dedup", c.Message);
    public Task Consume(ConsumeContext<Fault<DedupShardCreated>> c) => Add(c.Message.Message.Shard.RunId, "tokenize", c.Message);
    public Task Consume(ConsumeContext<Fault<TrainTokenizer>> c) => Add(c.Message.Message.RunId, "tokenizer training", c.Message);
    public Task Consume(ConsumeContext<Fault<StartTraining>> c) => Add(c.Message.Message.RunId, "training", c.Message);
    public Task Consume(ConsumeContext<Fault<AlignmentRequested>> c) => Add(c.Message.Message.RunId ?? "", "alignment", c.Message);
    public Task Consume(ConsumeContext<Fault<CheckpointSaved>> c) => Add(c.Message.Message.RunId, "evaluation", c.Message);
    public Task Consume(ConsumeContext<Fault<RunStageRequested>> c) => Add(c.Message.Message.RunId, c.Message.Message.Stage, c.Message);

    private Task Add<T>(string runId, string stage, Fault<T> fault)
    {
        faults.Add(runId, stage, fault.Exceptions);
        return Task.CompletedTask;
    }
}
