using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Logging;
using Pipeline.Alignment;
using Pipeline.Cleaner;
using Pipeline.Contracts;
using Pipeline.Contracts.Rows;
using Pipeline.Contracts.V1;
using Pipeline.Dedup;
using Pipeline.Evaluator;
using Pipeline.Evaluator.Tasks;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Tokenizer;
using Pipeline.Model;
using Pipeline.Trainer;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Cli;

/// <summary>Options of one end-to-end run.</summary>
/// <param name="Alignment">The fine-tune of the final checkpoint that the run asks the alignment service for, and whose evaluation it waits for (null: none).</param>
/// <param name="EvalTasks">The task files the run's checkpoints are scored on: their overlap with the corpus is measured before tokenization.</param>
/// <param name="RemoveContaminated">Drop the training documents that contain evaluation examples (Pipeline:Decontaminate:Remove).</param>
/// <param name="CrawlParts">Crawl jobs split by host, for as many crawler services (1: one job).</param>
public sealed record RunRequest(string RunId, IReadOnlyList<string> Seeds, int MaxPages, int VocabSize, TrainingConfig Training, RunAlignment? Alignment = null,
    IReadOnlyList<string>? EvalTasks = null, bool RemoveContaminated = false, int CrawlParts = 1)
{
    /// <summary>The run the alignment makes from the final checkpoint (null: none).</summary>
    public string? AlignedRun => Alignment?.OutputRun(Training.RunName, Training.MaxSteps);
}

/// <summary>
/// A fine-tune of a run's final checkpoint. The run's request carries it whole (data URI under the data root, method,
/// config), so an alignment service on another host needs no rule of its own for it.
/// </summary>
public sealed record RunAlignment(string Method, string DataUri, string ConfigJson)
{
    public string OutputRun(string baseRun, long baseStep) => new AlignmentRule { Run = baseRun, Method = Method }.OutputRun(baseStep);
}

/// <summary>
/// Drives a whole run through the bus, using the ledger as its memory and the stages' events as its clock: it starts the crawl, re-announces shards a
/// crashed process left unprocessed, starts tokenizer training when crawl, clean and dedup have drained, starts
/// training when every dedup shard is tokenized, and waits for the evaluations (and the aligned model's). Running it again resumes.
/// </summary>
public sealed class RunCoordinator(IBus bus, RunLedger ledger, ShardStore store, RunFaults faults, RunSignals signals, ILogger logger)
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

    // How long the ledger had been quiet when the current round of announcements began (for its warning lines).
    private TimeSpan _quiet;

    public async Task RunAsync(RunRequest request, CancellationToken ct)
    {
        if (ledger.RunConfig(request.RunId) is { } recorded) RunSettings.CheckResume(request, recorded);
        ledger.EnsureRun(request.RunId, request.Training.RunName, JsonSerializer.Serialize(request));
        Phase("crawl");
        await ReannounceAsync(request.RunId, ct);
        CrawlRequested Crawl(int part) => new(request.RunId, request.Seeds, request.MaxPages, Partition: part, Partitions: request.CrawlParts);
        for (var part = 0; part < request.CrawlParts; part++) await PublishAsync(Crawl(part), ct);
        await WaitAsync(request, () => ledger.Get(LedgerKeys.CrawlSummary(request.RunId)) is not null, ct, reconcile: async token =>
        {
            // A crawl request no crawler took (its job is not in the ledger) was lost: ask again.
            for (var part = 0; part < request.CrawlParts; part++)
                if (ledger.Get(LedgerKeys.Job(JobKinds.Crawl, Crawler.CrawlWorker.JobName(request.RunId, part, request.CrawlParts))) is null)
                    await AgainAsync(Crawl(part), $"crawl part {part} was not taken by any crawler", token);
            await ReannounceShardsAsync(request.RunId, token);
        });

        Phase("clean + dedup");
        await WaitAsync(request, () => ledger.Pending(request.RunId, StageNames.Crawl, ShardCleaner.Stage).Count == FailedCount(request.RunId, ShardCleaner.Stage)
            && ledger.Pending(request.RunId, ShardCleaner.Stage, ShardDeduplicator.Stage).Count == FailedCount(request.RunId, ShardDeduplicator.Stage), ct,
            reconcile: token => ReannounceShardsAsync(request.RunId, token));

        Phase("tokenizer");
        var dedupShards = ledger.Shards(request.RunId, ShardDeduplicator.Stage);
        if (dedupShards.Sum(s => s.Rows) == 0) throw new InvalidOperationException("no documents survived cleaning and dedup; nothing to train on");
        if (request.EvalTasks is { Count: > 0 } tasks && (ledger.Get(ContaminationKey(request.RunId)) is null
            || (request.RemoveContaminated && ledger.Get(CorpusTokenizer.ExcludedKey(request.RunId)) is null)))
            await MeasureContaminationAsync(request.RunId, tasks, dedupShards, request.RemoveContaminated, ct);
        var trainTokenizer = new TrainTokenizer(request.RunId, request.VocabSize, dedupShards.Select(s => s.Uri).ToList());
        await PublishAsync(trainTokenizer, ct);
        await WaitAsync(request, () => ledger.Get(LedgerKeys.Tokenizer(request.RunId)) is not null
            && ledger.Pending(request.RunId, ShardDeduplicator.Stage, CorpusTokenizer.Stage).Count == 0, ct, reconcile: async token =>
        {
            // Without a tokenizer the request was lost (or is still training: the tokenizer skips a second request
            // once it has one); with one, dedup shards not tokenized yet were announced into the void.
            if (ledger.Get(LedgerKeys.Tokenizer(request.RunId)) is null) await AgainAsync(trainTokenizer, "the run has no tokenizer yet", token);
            else await ReannounceShardsAsync(request.RunId, token);
        });

        Phase("train");
        // Without validation documents the trainer would measure validation loss on training data: a run with more
        // than a handful of documents and an empty validation split stops here instead, saying why.
        var manifest = await store.ReadTokenManifestAsync(RunArtifacts.TokenManifestUri(request.RunId), ct);
        var documents = dedupShards.Sum(s => s.Rows);
        if (manifest.ValidationTokens == 0 && documents > 20)
            throw new InvalidOperationException($"run {request.RunId}: the validation split is empty ({documents} documents, none drawn for validation); " +
                "raise Pipeline:Tokenizer:ValidationPerMille so that validation loss is not measured on training data");
        var training = request.Training with { Model = request.Training.Model with { VocabSize = manifest.VocabSize } };
        var trainedBefore = TrainingJob(training.RunName)?.State == JobState.Completed;
        var startTraining = new StartTraining(request.RunId, training.RunName, RunArtifacts.TokenManifestUri(request.RunId), JsonSerializer.Serialize(training));
        await PublishAsync(startTraining, ct);
        await WaitAsync(request, () => TrainingJob(training.RunName)?.State is JobState.Completed or JobState.Failed or JobState.Cancelled, ct,
            reconcile: token => TrainingJob(training.RunName) is null ? AgainAsync(startTraining, "no trainer took the training run", token) : Task.CompletedTask);
        if (TrainingJob(training.RunName) is { State: JobState.Failed } failed) throw new InvalidOperationException($"training failed: {failed.Error}");

        Phase("evaluate");
        // Resuming a run whose training had finished: a crash may have lost the final checkpoint's announcement before
        // it was evaluated (or aligned). Announce it again; the evaluator and the alignment jobs skip what they did.
        var finalUri = store.RelativeUri(Checkpoints.Folder(store.Resolve(Checkpoints.RunFolder(training.RunName)), training.MaxSteps));
        if (trainedBefore)
        {
            if (!Evaluated(finalUri))
                await ReannounceFinalCheckpointAsync(request.RunId, training.RunName, ct);
            if (request.AlignedRun is { } alignedBefore && (await CheckpointsOfAsync(alignedBefore, ct)).Count > 0 && !AnyEvaluated(alignedBefore))
                await ReannounceFinalCheckpointAsync(request.RunId, alignedBefore, ct);
        }
        // Evaluated = validation and every configured task scored (or failed), not just the first score.
        await WaitAsync(request, () => Evaluated(finalUri), ct, TimeSpan.FromMinutes(30));
        var runTasks = await StageTasksAsync(request, ct);
        // Every checkpoint of the run, as an evaluator configured with the tasks scores them on arrival (the embedded
        // run): over RabbitMQ the services have no tasks of their own, and the run asks for them here.
        await ScoreTasksAsync(request, await CheckpointsOfAsync(training.RunName, ct), runTasks, ct);
        if (request.Alignment is { } alignment)
        {
            Phase("align");
            // Asked for again on a resumed run: the alignment service names the job by its inputs and does not rerun
            // a completed one.
            var aligned = request.AlignedRun!;
            if ((await CheckpointsOfAsync(aligned, ct)).Count == 0)
                await PublishAsync(new AlignmentRequested(aligned, finalUri, alignment.Method, alignment.DataUri, alignment.ConfigJson, request.RunId), ct);
            await WaitAsync(request, () => AnyEvaluated(aligned), ct, TimeSpan.FromMinutes(30));
            await ScoreTasksAsync(request, await CheckpointsOfAsync(aligned, ct), runTasks, ct);
        }
        ledger.SetRunState(request.RunId, "completed");
        Phase("done");
    }

    /// <summary>A task of the run as the evaluator is asked for it: its URI under the data root, name and version.</summary>
    private sealed record StagedTask(string Uri, string Name, string Version);

    /// <summary>
    /// The run's task files travel with the run, not with the evaluator's configuration: each is copied under
    /// tasks/&lt;run&gt;/ in the data root with the data file it names, so an evaluator on another host can be asked
    /// for it by URI (messages never carry host paths). lm-eval task files, which may name more files, and data
    /// outside the task's folder are not copied; those tasks are scored only by an evaluator configured with them.
    /// </summary>
    private async Task<IReadOnlyList<StagedTask>> StageTasksAsync(RunRequest request, CancellationToken ct)
    {
        var staged = new List<StagedTask>();
        foreach (var file in request.EvalTasks ?? [])
        {
            var task = TaskLoader.Load(file);
            var dataPath = TaskLoader.DataPath(task);
            var data = Path.GetRelativePath(Path.GetDirectoryName(task.SourceFile)!, dataPath);
            if (LmEvalTaskFile.IsLmEval(file) || data.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(data))
            {
                logger.LogWarning("run: task file {File} stays on this host: only an evaluator configured with it scores it", file);
                continue;
            }
            var folder = $"tasks/{request.RunId}";
            var uri = $"{folder}/{Path.GetFileName(file)}";
            await CopyAsync(file, uri, ct);
            await CopyAsync(dataPath, $"{folder}/{data.Replace('\\', '/')}", ct);
            staged.Add(new StagedTask(uri, task.Name, task.Version.ToString()));
        }
        return staged;

        Task CopyAsync(string path, string uri, CancellationToken token) => store.WriteAtomicAsync(uri, async s =>
        {
            await using var source = File.OpenRead(path);
            await source.CopyToAsync(s, token);
        }, token);
    }

    /// <summary>
    /// Asks the evaluator for the run's tasks on a checkpoint and waits until each is scored or has failed. Tasks the
    /// evaluator already scored (it is configured with them) are skipped on its side.
    /// </summary>
    private async Task ScoreTasksAsync(RunRequest request, IReadOnlyList<string> checkpointUris, IReadOnlyList<StagedTask> tasks, CancellationToken ct)
    {
        bool Done(string checkpointUri, StagedTask t) => ledger.HasEval(checkpointUri, t.Name, t.Version)
            || signals.TaskError(checkpointUri, t.Name) is not null || signals.TaskError(checkpointUri, t.Uri) is not null;
        var missing = checkpointUris.SelectMany(c => tasks.Where(t => !Done(c, t)).Select(t => (Checkpoint: c, Task: t))).ToList();
        if (missing.Count == 0) return;
        var message = new EvaluateRequested([], missing.Select(m => m.Checkpoint).Distinct().ToList(), missing.Select(m => m.Task.Uri).Distinct().ToList(), LatestOnly: false, Force: false);
        await PublishAsync(message, ct);
        await WaitAsync(request, () => missing.All(m => Done(m.Checkpoint, m.Task)), ct, TimeSpan.FromMinutes(30));
    }

    /// <summary>The ledger key of a run's contamination table (JSON list of <see cref="TaskContamination"/>).</summary>
    public static string ContaminationKey(string runId) => $"contamination:{runId}";

    /// <summary>
    /// Before tokenization: how many examples of each evaluation task the training corpus (the dedup shards) already
    /// contains, so the report can put it next to each score. Documents are checked one row group at a time. With
    /// <paramref name="remove"/>, the ids of the documents that contain any example go to a file the tokenizer skips.
    /// </summary>
    private async Task MeasureContaminationAsync(string runId, IReadOnlyList<string> taskFiles, IReadOnlyList<ShardRef> shards, bool remove, CancellationToken ct)
    {
        var index = new Contamination.Index(taskFiles.Select(TaskLoader.Load).ToList());
        var contaminated = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var shard in shards)
            await foreach (var group in store.ReadRowGroupsAsync<CleanDocument>(shard, ct))
                foreach (var document in group)
                    if (index.Check(document.Text)) contaminated.Add(document.Id);
        var result = index.Result();
        foreach (var task in result)
            logger.LogInformation("run: {Task}: {Contaminated} of {Examples} examples overlap the training corpus", task.Task, task.Contaminated, task.Examples);
        if (remove)
        {
            var uri = $"decontamination/{runId}/excluded-documents.json";
            var (sha256, _) = await store.WriteAtomicAsync(uri, s => JsonSerializer.SerializeAsync(s, contaminated, cancellationToken: ct), ct);
            ledger.Set(CorpusTokenizer.ExcludedKey(runId), JsonSerializer.Serialize(new ExcludedDocuments(uri, sha256, contaminated.Count)));
            logger.LogInformation("run: {Documents} training documents that contain evaluation examples are removed before tokenization ({Uri})", contaminated.Count, uri);
        }
        ledger.Set(ContaminationKey(runId), JsonSerializer.Serialize(result));
    }

    /// <summary>
    /// Publishes, waiting out a broker that is away (restarting, a network blip) instead of failing the run: every
    /// consumer is idempotent, so a message that did reach the broker before the error and is sent again does no harm.
    /// </summary>
    private async Task PublishAsync<T>(T message, CancellationToken ct) where T : class
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await bus.PublishBounded(message, ct);
                return;
            }
            catch (Exception e) when (!ct.IsCancellationRequested && attempt < 60)
            {
                logger.LogWarning("run: publishing {Message} failed ({Error}); trying again", typeof(T).Name, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
            }
        }
    }

    private int FailedCount(string runId, string stage) => ledger.Failures(runId, stage).Count;

    private LedgerJob<StartTraining>? TrainingJob(string runName) =>
        ledger.Get(LedgerKeys.Job(JobKinds.Training, runName)) is { } json ? JsonSerializer.Deserialize<LedgerJob<StartTraining>>(json) : null;

    /// <summary>Shards written before a crash whose next stage has not finished them: announce them again.</summary>
    private async Task ReannounceAsync(string runId, CancellationToken ct)
    {
        foreach (var shard in ledger.Pending(runId, StageNames.Crawl, ShardCleaner.Stage)) await PublishAsync(new RawShardCreated(shard), ct);
        foreach (var shard in ledger.Pending(runId, ShardCleaner.Stage, ShardDeduplicator.Stage)) await PublishAsync(new CleanShardCreated(shard), ct);
    }

    /// <summary>
    /// While the run waits with nothing moving: every shard recorded by one stage and neither finished nor failed by
    /// the next is announced again, each with a warning naming it (failed ones stay failed; dedup shards only once
    /// the run has its tokenizer, which they wait for).
    /// </summary>
    private async Task ReannounceShardsAsync(string runId, CancellationToken ct)
    {
        async Task Again<T>(string producer, string consumer, Func<ShardRef, T> message) where T : class
        {
            var failed = ledger.Failures(runId, consumer).Select(f => f.InputId).ToHashSet();
            foreach (var shard in ledger.Pending(runId, producer, consumer).Where(s => !failed.Contains(s.ShardId)))
                await AgainAsync(message(shard), $"shard {shard.Uri} was recorded by {producer} but not taken by {consumer}", ct);
        }
        await Again(StageNames.Crawl, ShardCleaner.Stage, s => new RawShardCreated(s));
        await Again(ShardCleaner.Stage, ShardDeduplicator.Stage, s => new CleanShardCreated(s));
        if (ledger.Get(LedgerKeys.Tokenizer(runId)) is not null) await Again(ShardDeduplicator.Stage, CorpusTokenizer.Stage, s => new DedupShardCreated(s));
    }

    private async Task AgainAsync<T>(T message, string why, CancellationToken ct) where T : class
    {
        logger.LogWarning("run: {Why}, and the ledger has not changed for {Quiet} s; announcing it again", why, Math.Round(_quiet.TotalSeconds));
        await PublishAsync(message, ct);
    }

    private async Task ReannounceFinalCheckpointAsync(string runId, string runName, CancellationToken ct)
    {
        var uri = (await CheckpointsOfAsync(runName, ct)).LastOrDefault();
        if (uri is null) return;
        logger.LogInformation("run: announcing the final checkpoint {Checkpoint} again", uri);
        await PublishAsync(await Checkpoints.SavedMessageAsync(store, runId, await store.FetchFolderAsync(uri, ct), ct), ct);
    }

    private bool Evaluated(string checkpointUri) => ledger.Get(CheckpointEvaluator.EvaluatedKey(checkpointUri)) is not null;

    private bool AnyEvaluated(string runName) =>
        ledger.KeysWithPrefix(CheckpointEvaluator.EvaluatedKey(Checkpoints.RunFolder(runName) + "/")).Count > 0;

    private Task<IReadOnlyList<string>> CheckpointsOfAsync(string runName, CancellationToken ct) =>
        Checkpoints.ListAsync(store, Checkpoints.RunFolder(runName), ct);

    private void Phase(string name)
    {
        logger.LogInformation("run: {Phase}", name);
        OnPhase?.Invoke(name);
    }

    /// <summary>
    /// Waits for the next phase; a stage fault or a failed long job of this run ends the wait at once with that
    /// stage's error, so a run never waits out a timeout for work that can no longer happen.
    /// </summary>
    /// <param name="reconcile">What to announce again when the ledger has not changed for <see cref="Reconcile"/>.</param>
    private async Task WaitAsync(RunRequest request, Func<bool> condition, CancellationToken ct, TimeSpan? timeout = null,
        Func<CancellationToken, Task>? reconcile = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromHours(24));
        var mark = reconcile is null ? "" : ledger.ChangeMark();
        var quietSince = DateTime.UtcNow;
        // Backoff: each announcement again with nothing moving doubles the quiet time before the next (a stage that
        // is only slow, on a large shard, is not sent the same shard every 30 s); any change starts over.
        var quietFor = Reconcile;
        while (true)
        {
            var next = signals.Next; // before the check: an event that lands during it still wakes the wait below
            if (condition()) return;
            if (faults.For(request.RunId) is { } fault) throw new InvalidOperationException($"run {request.RunId}: {fault}");
            if (FailedJob(request) is { } failed) throw new InvalidOperationException($"run {request.RunId}: {failed}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"run {request.RunId}: the run did not reach its next phase in {timeout ?? TimeSpan.FromHours(24)}");
            if (reconcile is not null)
            {
                var now = ledger.ChangeMark();
                if (now != mark) (mark, quietSince, quietFor) = (now, DateTime.UtcNow, Reconcile);
                else if (DateTime.UtcNow - quietSince >= quietFor)
                {
                    _quiet = DateTime.UtcNow - quietSince;
                    await reconcile(ct);
                    quietSince = DateTime.UtcNow;
                    quietFor = TimeSpan.FromTicks(Math.Min(quietFor.Ticks * 2, TimeSpan.FromMinutes(10).Ticks));
                }
            }
            await Task.WhenAny(next, Task.Delay(Recheck, ct));
            ct.ThrowIfCancellationRequested();
        }
    }

    private string? FailedJob(RunRequest request)
    {
        foreach (var name in Enumerable.Range(0, request.CrawlParts).Select(i => Crawler.CrawlWorker.JobName(request.RunId, i, request.CrawlParts)))
            if (ledger.Get(LedgerKeys.Job(JobKinds.Crawl, name)) is { } crawl
                && JsonSerializer.Deserialize<LedgerJob<CrawlRequested>>(crawl) is { State: JobState.Failed } c)
                return $"crawl failed: {c.Error}";
        if (TrainingJob(request.Training.RunName) is { State: JobState.Failed } t) return $"training failed: {t.Error}";
        foreach (var key in ledger.KeysWithPrefix(LedgerKeys.Job(JobKinds.Alignment, "")))
            if (JsonSerializer.Deserialize<LedgerJob<AlignmentRequested>>(ledger.Get(key)!) is { State: JobState.Failed } a && a.Request.RunId == request.RunId)
                return $"alignment failed: {a.Error}";
        return null;
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
    };

    public static void CheckResume(RunRequest request, string recordedJson)
    {
        var recorded = Flatten(System.Text.Json.Nodes.JsonNode.Parse(recordedJson));
        var now = Flatten(JsonSerializer.SerializeToNode(request));
        var differences = new List<string>();
        foreach (var (key, value) in now)
        {
            // A setting the recording run did not have yet (an older ledger) is not a difference.
            if (!recorded.TryGetValue(key, out var before) || before == value) continue;
            differences.Add($"{(Flags.TryGetValue(key, out var flag) ? flag : key)} was {before}, now {value}");
        }
        if (differences.Count > 0)
            throw new ArgumentException($"run '{request.RunId}' was started with other settings ({string.Join("; ", differences)}); " +
                "run it again with the same ones to resume, or start another run with --run NAME or another --out");
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
