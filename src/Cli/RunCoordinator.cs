using System.Text.Json;
using System.Text.Json.Serialization;
using MassTransit;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts;
using Pipeline.Alignment;
using Pipeline.Contracts.V1;
using Pipeline.Evaluator;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Cli;

/// <summary>Options of one end-to-end run.</summary>
/// <param name="Alignment">The fine-tune (SFT or DPO) of the final checkpoint that the run asks the alignment service for, and whose evaluation it waits for (null: none).</param>
/// <param name="EvalTasks">The task files the run's checkpoints are scored on: their overlap with the corpus is measured before tokenization.</param>
/// <param name="RemoveContaminated">Drop the training documents that contain evaluation examples (Pipeline:Decontaminate:Remove).</param>
/// <param name="CrawlParts">Crawl jobs split by host, for as many crawler services (1: one job).</param>
/// <param name="Release">Targets the final checkpoint is released as (int8, int4, gguf:q8_0, ...; null or empty: none).</param>
/// <param name="RewardModel">A reward model trained from the policy (<see cref="PolicyBase"/>) on preference pairs (null: none).</param>
/// <param name="Reinforcement">GRPO or PPO of the policy (<see cref="PolicyBase"/>), rewarded by <see cref="RewardModel"/> or a verifier (null: none).</param>
/// <param name="SemanticDedup">Semantic dedup of the kept documents before tokenization (Pipeline:SemanticDedup; null: none).</param>
public sealed record RunRequest(string RunId, IReadOnlyList<string> Seeds, int MaxPages, int VocabSize, TrainingConfig Training, RunAlignment? Alignment = null,
    IReadOnlyList<string>? EvalTasks = null, bool RemoveContaminated = false, int CrawlParts = 1, IReadOnlyList<string>? Release = null,
    RunAlignment? RewardModel = null, RunAlignment? Reinforcement = null, SemanticDedupSettings? SemanticDedup = null)
{
    /// <summary>The run the alignment makes from the final checkpoint (null: none).</summary>
    public string? AlignedRun => Alignment?.OutputRun(Training.RunName, Training.MaxSteps);

    /// <summary>The checkpoint the reward model and RL start from: the aligned model's last, else the run's final one (InstructGPT: SFT, then RM, then RL).</summary>
    [JsonIgnore]
    public (string Run, long Step) PolicyBase => PolicyBaseOf(Training, Alignment);

    /// <summary>The reward model's run (null: none).</summary>
    [JsonIgnore]
    public string? RewardRun => RewardModel?.OutputRun(PolicyBase.Run, PolicyBase.Step);

    /// <summary>The RL policy's run (null: none).</summary>
    [JsonIgnore]
    public string? ReinforcedRun => Reinforcement?.OutputRun(PolicyBase.Run, PolicyBase.Step);

    /// <summary>The runs the run's alignment phase makes, in order: each with the checkpoint it starts from.</summary>
    [JsonIgnore]
    public IReadOnlyList<DerivedRun> DerivedRuns =>
    [
        .. Alignment is { } a ? [new DerivedRun(AlignedRun!, a.Method, Training.RunName, Training.MaxSteps, Training.MaxSteps)] : Array.Empty<DerivedRun>(),
        .. RewardModel is { } r ? [new DerivedRun(RewardRun!, r.Method, PolicyBase.Run, PolicyBase.Step, Training.MaxSteps + (Alignment?.Steps ?? 0))] : Array.Empty<DerivedRun>(),
        .. Reinforcement is { } l ? [new DerivedRun(ReinforcedRun!, l.Method, PolicyBase.Run, PolicyBase.Step, Training.MaxSteps + (Alignment?.Steps ?? 0))] : Array.Empty<DerivedRun>(),
    ];

    public static (string Run, long Step) PolicyBaseOf(TrainingConfig training, RunAlignment? alignment) =>
        alignment is null ? (training.RunName, training.MaxSteps) : (alignment.OutputRun(training.RunName, training.MaxSteps), alignment.Steps);
}

/// <summary>A run made in a run's alignment phase: its method, the checkpoint (run, step) it starts from, and where its steps sit on the base run's axis.</summary>
public sealed record DerivedRun(string Run, string Method, string BaseRun, long BaseStep, long StartStep)
{
    public string From => $"{BaseRun} step {BaseStep}";
}

/// <summary>
/// A fine-tune of a run's final checkpoint. The run's request carries it whole (data URI under the data root, method,
/// config), so an alignment service on another host needs no rule of its own for it.
/// </summary>
public sealed record RunAlignment(string Method, string DataUri, string ConfigJson)
{
    public string OutputRun(string baseRun, long baseStep) => new AlignmentRule { Run = baseRun, Method = Method }.OutputRun(baseStep);

    /// <summary>The job's steps: its last checkpoint is at this step.</summary>
    [JsonIgnore]
    public int Steps => AlignmentConfig.FromJson(ConfigJson).Steps;
}

/// <summary>
/// Drives a whole run through the bus, using the ledger as its memory and the stages' events as its clock. It knows
/// no stage: it walks the run's graph (<see cref="PipelineGraph"/>), starts every node whose predecessors have
/// finished, and waits until the ledger says each is finished; a node that can no longer finish, or a stage fault,
/// ends the run with that error. Running it again resumes: nodes the ledger says are finished are not started again.
/// </summary>
public sealed class RunCoordinator(IBus bus, Ledger ledger, ShardStore store, RunFaults faults, RunSignals signals, ILogger logger)
{
    public Action<string>? OnPhase { get; init; }

    /// <summary>
    /// How long the coordinator waits with no event before it reads the ledger anyway: the run advances on the stages'
    /// events (<see cref="RunSignals"/>); this only covers an event lost on its way, or one that no stage sends (a
    /// crawl job that failed).
    /// </summary>
    public TimeSpan Recheck { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long a waiting run may see the ledger unchanged before it announces again what is recorded but not taken:
    /// a message lost on its way (a broker replaced by a new, empty node loses every message it held and every one
    /// published meanwhile) is sent again, with a warning naming it. Consumers are idempotent, so a message that was
    /// only slow costs a skip.
    /// </summary>
    public TimeSpan Reconcile { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Where the coordinator is with one node of the run.</summary>
    private sealed class NodeState
    {
        public bool Started, Done, FinishedAtStart;
        public DateTime StartedAt;
    }

    public async Task RunAsync(RunRequest request, CancellationToken ct)
    {
        if (ledger.Runs.Config(request.RunId) is { } recorded) RunSettings.CheckResume(request, recorded);
        ledger.Runs.Ensure(request.RunId, request.Training.RunName, JsonSerializer.Serialize(request));
        var graph = PipelineGraph.For(request);
        var states = graph.ToDictionary(n => n.Name, n => new NodeState { Done = !n.When(request) });
        foreach (var node in graph)
            if (node.After.Concat(node.Input is { } i ? [i] : []).FirstOrDefault(a => !states.ContainsKey(a)) is { } unknown)
                throw new InvalidOperationException($"graph: node '{node.Name}' waits for '{unknown}', which is not in the graph");
        var run = new RunContext(request, ledger, store, bus, logger)
        {
            Finished = name => states[name].Done,
            FinishedAtStart = name => states[name].FinishedAtStart,
        };

        var mark = ledger.ChangeMark();
        var quietSince = DateTime.UtcNow;
        // Backoff: each announcement again with nothing moving doubles the quiet time before the next (a stage that
        // is only slow, on a large shard, is not sent the same shard every 30 s); any change starts over.
        var quietFor = Reconcile;
        var reported = -1;
        string? phase = null;
        // Every part of the run reached is named once, in graph order: a node's part when every node before it has
        // finished (before it starts, so what is measured at a part's start precedes its work).
        void ReportUpTo(int index)
        {
            for (; reported < Math.Min(index, graph.Count - 1); reported++)
                if (graph[reported + 1] is var node && node.When(request) && node.Phase != phase)
                {
                    phase = node.Phase;
                    Phase(phase);
                }
        }
        while (true)
        {
            var next = signals.Next; // before the check: an event that lands during it still wakes the wait below
            await AdvanceAsync(graph, states, run, ReportUpTo, ct);
            var first = graph.ToList().FindIndex(n => !states[n.Name].Done);
            ReportUpTo(first < 0 ? graph.Count - 1 : first);
            if (first < 0) break;

            if (faults.For(request.RunId) is { } fault) throw new InvalidOperationException($"run {request.RunId}: {fault}");
            foreach (var node in graph.Where(n => states[n.Name] is { Started: true, Done: false }))
            {
                if (node.Failure(run) is { } failure) throw new InvalidOperationException($"run {request.RunId}: {failure}");
                if (DateTime.UtcNow - states[node.Name].StartedAt > node.Timeout)
                    throw new TimeoutException($"run {request.RunId}: {node.Name} did not finish in {node.Timeout}");
            }

            var now = ledger.ChangeMark();
            if (now != mark) (mark, quietSince, quietFor) = (now, DateTime.UtcNow, Reconcile);
            else if (DateTime.UtcNow - quietSince >= quietFor)
            {
                run.Quiet = DateTime.UtcNow - quietSince;
                foreach (var node in graph.Where(n => states[n.Name] is { Started: true, Done: false })) await node.ReconcileAsync(run, ct);
                quietSince = DateTime.UtcNow;
                quietFor = TimeSpan.FromTicks(Math.Min(quietFor.Ticks * 2, TimeSpan.FromMinutes(10).Ticks));
            }
            await Task.WhenAny(next, Task.Delay(Recheck, ct));
            ct.ThrowIfCancellationRequested();
        }
        ledger.Runs.SetState(request.RunId, "completed");
        Phase("done");
    }

    /// <summary>
    /// One pass over the graph in order: a node whose predecessors have finished is started (unless the ledger says
    /// it had finished before: a resumed run), and marked finished when the ledger says so, which may let the nodes
    /// after it start in the same pass.
    /// </summary>
    private static async Task AdvanceAsync(IReadOnlyList<GraphNode> graph, Dictionary<string, NodeState> states, RunContext run,
        Action<int> reportUpTo, CancellationToken ct)
    {
        for (var index = 0; index < graph.Count; index++)
        {
            var node = graph[index];
            var state = states[node.Name];
            if (state.Done || node.After.Any(a => !states[a].Done)) continue;
            if (!state.Started)
            {
                (state.Started, state.StartedAt) = (true, DateTime.UtcNow);
                if (node.IsDone(run))
                {
                    state.Done = state.FinishedAtStart = true;
                    continue;
                }
                if (graph.Take(index).All(n => states[n.Name].Done)) reportUpTo(index);
                await node.StartAsync(run, ct);
            }
            state.Done = node.IsDone(run);
        }
    }

    private void Phase(string name)
    {
        logger.LogInformation("run: {Phase}", name);
        OnPhase?.Invoke(name);
    }
}

/// <summary>
/// A run resumes only with the settings it was started with: anything else would mix two runs' data or wait for a
/// checkpoint that the recorded training will never write. Every differing setting is named, by its flag where it has one.
/// </summary>
public static class RunSettings
{
    private static readonly Dictionary<string, string> Flags = new()
    {
        ["Seeds"] = "--seed", ["MaxPages"] = "--max-pages", ["VocabSize"] = "--vocab", ["Training.MaxSteps"] = "--steps",
        ["CrawlParts"] = "--crawl-parts", ["EvalTasks"] = "--eval-tasks", ["RemoveContaminated"] = "Pipeline:Decontaminate:Remove",
        ["SemanticDedup.Epsilon"] = "Pipeline:SemanticDedup:Epsilon", ["Alignment.Method"] = "--align", ["RewardModel.Method"] = "--align", ["Reinforcement.Method"] = "--align",
    };

    public static void CheckResume(RunRequest request, string recordedJson)
    {
        var differences = Differences(recordedJson, request, Flags);
        if (differences.Count > 0)
            throw new ArgumentException($"run '{request.RunId}' was started with other settings ({string.Join("; ", differences)}); " +
                "run it again with the same ones to resume, or start another run with --run NAME or another --out");
    }

    /// <summary>
    /// What differs between recorded settings (JSON) and the settings now, each as "KEY was X, now Y" (a key by its flag
    /// where <paramref name="flags"/> names one). A setting the recording did not have yet (an older ledger) is not a difference.
    /// </summary>
    public static IReadOnlyList<string> Differences(string recordedJson, object now, IReadOnlyDictionary<string, string>? flags = null)
    {
        var recorded = Flatten(System.Text.Json.Nodes.JsonNode.Parse(recordedJson));
        var differences = new List<string>();
        foreach (var (key, value) in Flatten(JsonSerializer.SerializeToNode(now)))
            if (recorded.TryGetValue(key, out var before) && before != value)
                differences.Add($"{(flags is not null && flags.TryGetValue(key, out var flag) ? flag : key)} was {before}, now {value}");
        return differences;
    }

    private static Dictionary<string, string> Flatten(System.Text.Json.Nodes.JsonNode? node)
    {
        var values = new Dictionary<string, string>();
        void Walk(System.Text.Json.Nodes.JsonNode? n, string path)
        {
            switch (n)
            {
                case System.Text.Json.Nodes.JsonObject o:
                    foreach (var (k, v) in o) Walk(v, path.Length == 0 ? k : $"{path}.{k}");
                    break;
                case System.Text.Json.Nodes.JsonArray a when path == "EvalTasks":
                    // Task files by name: the same run resumed from another checkout finds them under another folder.
                    values[path] = string.Join(", ", a.Select(t => Path.GetFileName(t?.GetValue<string>() ?? "")));
                    break;
                case System.Text.Json.Nodes.JsonArray a:
                    values[path] = string.Join(", ", a.Select(t => t?.ToJsonString() ?? "null"));
                    break;
                default:
                    values[path] = n?.ToJsonString() ?? "null";
                    break;
            }
        }
        Walk(node, "");
        return values;
    }
}
