using MassTransit;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Cli;

/// <summary>
/// One node of a run's graph (<see cref="PipelineGraph"/>): what it reads and writes, what must be finished before it
/// starts, how it starts, and how the ledger says it is finished or has failed. The coordinator knows nothing else of it.
/// </summary>
public abstract class GraphNode
{
    /// <summary>The node's name; for stages that write shards or ledger rows, the stage name they have there.</summary>
    public required string Name { get; init; }

    /// <summary>What it reads and writes, for the drawing (docs/architecture.md).</summary>
    public required string Reads { get; init; }
    public required string Writes { get; init; }

    /// <summary>The service that does the work (as for `pipeline serve`).</summary>
    public required string Service { get; init; }

    /// <summary>The progress line's name for the part of the run this node belongs to.</summary>
    public required string Phase { get; init; }

    /// <summary>The node whose shards this one reads (per-shard stages and barriers), or null.</summary>
    public string? Input { get; init; }

    /// <summary>Nodes that must be finished before this one starts.</summary>
    public IReadOnlyList<string> After { get; init; } = [];

    /// <summary>Whether the run has this node at all (a node that does not apply counts as finished).</summary>
    public Func<RunRequest, bool> When { get; init; } = _ => true;

    /// <summary><see cref="When"/> in words, for the drawing.</summary>
    public string? Only { get; init; }

    /// <summary>How long the node may run before the run gives up, naming it.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromHours(24);

    public abstract string Kind { get; }

    /// <summary>Starts the node (publishes its request); not called when the ledger says it had finished already.</summary>
    public virtual Task StartAsync(RunContext run, CancellationToken ct) => Task.CompletedTask;

    public abstract bool IsDone(RunContext run);

    /// <summary>Why the node can no longer finish, or null.</summary>
    public virtual string? Failure(RunContext run) => null;

    /// <summary>Announces again what the ledger says was started but not taken (messages a replaced broker lost).</summary>
    public virtual Task ReconcileAsync(RunContext run, CancellationToken ct) => Task.CompletedTask;
}

/// <summary>A stage that turns each shard of its input into shards of its own, as the shards are announced.</summary>
/// <param name="announce">The announcement of one input shard (the message its consumer takes).</param>
/// <param name="resume">Whether to announce, at start, input shards recorded before a crash and not finished.</param>
public sealed class ShardStageNode<TMessage>(Func<ShardRef, TMessage> announce, bool resume = true) : GraphNode where TMessage : class
{
    public override string Kind => "per shard";

    public override async Task StartAsync(RunContext run, CancellationToken ct)
    {
        if (!resume) return;
        foreach (var shard in Unfinished(run)) await run.PublishAsync(announce(shard), ct);
    }

    public override bool IsDone(RunContext run) =>
        run.IsDone(Input!) && run.Ledger.Artifacts.Pending(run.RunId, Input!, Name).Count == run.Ledger.Artifacts.Failures(run.RunId, Name).Count;

    public override async Task ReconcileAsync(RunContext run, CancellationToken ct)
    {
        foreach (var shard in Unfinished(run))
            await run.AgainAsync(announce(shard), $"shard {shard.Uri} was recorded by {Input} but not taken by {Name}", ct);
    }

    /// <summary>Input shards neither finished nor failed for good.</summary>
    private IEnumerable<ShardRef> Unfinished(RunContext run)
    {
        var failed = run.Ledger.Artifacts.Failures(run.RunId, Name).Select(f => f.InputId).ToHashSet();
        return run.Ledger.Artifacts.Pending(run.RunId, Input!, Name).Where(s => !failed.Contains(s.ShardId)).ToList();
    }
}

/// <summary>
/// A barrier stage (<see cref="IRunStage"/>): it runs once, over every shard of its input, when the nodes before it
/// have finished; the service hosting it records it in the ledger as its one input, the run.
/// </summary>
/// <param name="settings">The stage's settings for this run (serialized into its request).</param>
public sealed class BarrierNode<TStage>(Func<RunContext, CancellationToken, Task<object>> settings) : GraphNode where TStage : IRunStage
{
    private RunStageRequested? _request;

    public override string Kind => "barrier";

    public override async Task StartAsync(RunContext run, CancellationToken ct)
    {
        _request = new RunStageRequested(run.RunId, TStage.Name, Input!, System.Text.Json.JsonSerializer.Serialize(await settings(run, ct)));
        await run.PublishAsync(_request, ct);
    }

    public override bool IsDone(RunContext run) => run.Ledger.Artifacts.IsProcessed(TStage.Name, RunStages.InputId(run.RunId));

    public override Task ReconcileAsync(RunContext run, CancellationToken ct) =>
        _request is null ? Task.CompletedTask : run.AgainAsync(_request, $"the {TStage.Name} stage has not finished the run", ct);
}

/// <summary>A long job (a crawl, a training run, an evaluation): started by a request, finished when its ledger record says so.</summary>
public abstract class JobNode : GraphNode
{
    public override string Kind => "job";
}

/// <summary>What a node sees of the run it belongs to.</summary>
public sealed class RunContext(RunRequest request, Ledger ledger, ShardStore store, IBus bus, ILogger logger)
{
    public RunRequest Request => request;
    public string RunId => request.RunId;
    public Ledger Ledger => ledger;
    public ShardStore Store => store;
    public ILogger Logger => logger;

    /// <summary>Whether a node has finished (or does not apply to this run): the coordinator's answer.</summary>
    internal Func<string, bool> Finished { get; init; } = _ => false;

    /// <summary>Whether a node had finished before this coordinator started (a resumed run).</summary>
    internal Func<string, bool> FinishedAtStart { get; init; } = _ => false;

    /// <summary>How long the ledger has been quiet when announcements are made again.</summary>
    internal TimeSpan Quiet { get; set; }

    public bool IsDone(string node) => Finished(node);

    public bool FinishedBefore(string node) => FinishedAtStart(node);

    /// <summary>Publishes (<see cref="BoundedPublish"/>: a broker that is away is waited out).</summary>
    public Task PublishAsync<T>(T message, CancellationToken ct) where T : class => bus.PublishBounded(message, ct);

    /// <summary>Publishes again what was lost, with a warning saying why.</summary>
    public Task AgainAsync<T>(T message, string why, CancellationToken ct) where T : class
    {
        logger.LogWarning("run: {Why}, and the ledger has not changed for {Quiet} s; announcing it again", why, Math.Round(Quiet.TotalSeconds));
        return PublishAsync(message, ct);
    }
}
