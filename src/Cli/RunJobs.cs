using System.Text.Json;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts;
using Pipeline.Contracts.V1;
using Pipeline.Evaluator;
using Pipeline.Evaluator.Tasks;
using Pipeline.Hosting;
using Pipeline.Model;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Cli;

// The long jobs of a run's graph (PipelineGraph): how each starts, and what in the ledger says it finished or failed.

/// <summary>The crawl: one job per part of a crawl split by host; finished when the crawl's summary is written.</summary>
public sealed class CrawlJob : JobNode
{
    public override async Task StartAsync(RunContext run, CancellationToken ct)
    {
        for (var part = 0; part < run.Request.CrawlParts; part++) await run.PublishAsync(Request(run, part), ct);
    }

    public override bool IsDone(RunContext run) => run.Ledger.Documents.Get(LedgerKeys.CrawlSummary(run.RunId)) is not null;

    public override string? Failure(RunContext run)
    {
        foreach (var part in Parts(run))
            if (Job(run, part) is { State: JobState.Failed } failed) return $"crawl failed: {failed.Error}";
        return null;
    }

    // A crawl request no crawler took (its job is not in the ledger) was lost: ask again.
    public override async Task ReconcileAsync(RunContext run, CancellationToken ct)
    {
        foreach (var part in Parts(run).Where(p => Job(run, p) is null))
            await run.AgainAsync(Request(run, part), $"crawl part {part} was not taken by any crawler", ct);
    }

    private static CrawlRequested Request(RunContext run, int part) =>
        new(run.RunId, run.Request.Seeds, run.Request.MaxPages, Partition: part, Partitions: run.Request.CrawlParts);

    private static IEnumerable<int> Parts(RunContext run) => Enumerable.Range(0, run.Request.CrawlParts);

    private static LedgerJob<CrawlRequested>? Job(RunContext run, int part) =>
        run.Ledger.Jobs.Get<CrawlRequested>(JobKinds.Crawl, Crawler.CrawlWorker.JobName(run.RunId, part, run.Request.CrawlParts));
}

/// <summary>
/// The vocabulary, trained once on every kept document; the tokenizer service then tokenizes the shards that waited
/// for it. Finished when the ledger names the run's tokenizer.
/// </summary>
public sealed class TokenizerTrainJob : JobNode
{
    public const string Node = "tokenizer-train";

    public override Task StartAsync(RunContext run, CancellationToken ct)
    {
        if (run.Ledger.Artifacts.Shards(run.RunId, StageNames.Dedup).Sum(s => s.Rows) == 0)
            throw new InvalidOperationException("no documents survived cleaning and dedup; nothing to train on");
        return run.PublishAsync(Request(run), ct);
    }

    public override bool IsDone(RunContext run) => run.Ledger.Documents.Get(LedgerKeys.Tokenizer(run.RunId)) is not null;

    // Without a tokenizer the request was lost (or is still training: the tokenizer skips a second request once it has one).
    public override Task ReconcileAsync(RunContext run, CancellationToken ct) => run.AgainAsync(Request(run), "the run has no tokenizer yet", ct);

    private static TrainTokenizer Request(RunContext run) => new(run.RunId, run.Request.VocabSize);
}

/// <summary>Pretraining on the run's token manifest; finished when the training job completed (or was cancelled).</summary>
public sealed class TrainJob : JobNode
{
    public const string Node = "train";

    private StartTraining? _request;

    public override async Task StartAsync(RunContext run, CancellationToken ct)
    {
        // Without validation documents the trainer would measure validation loss on training data: a run with more
        // than a handful of documents and an empty validation split stops here instead, saying why.
        var manifest = await run.Store.ReadTokenManifestAsync(RunArtifacts.TokenManifestUri(run.RunId), ct);
        var documents = run.Ledger.Artifacts.Shards(run.RunId, StageNames.Dedup).Sum(s => s.Rows);
        if (manifest.ValidationTokens == 0 && documents > 20)
            throw new InvalidOperationException($"run {run.RunId}: the validation split is empty ({documents} documents, none drawn for validation); " +
                "raise Pipeline:Tokenizer:ValidationPerMille so that validation loss is not measured on training data");
        var training = run.Request.Training with { Model = run.Request.Training.Model with { VocabSize = manifest.VocabSize } };
        _request = new StartTraining(run.RunId, training.RunName, RunArtifacts.TokenManifestUri(run.RunId), JsonSerializer.Serialize(training));
        await run.PublishAsync(_request, ct);
    }

    public override bool IsDone(RunContext run) => Job(run)?.State is JobState.Completed or JobState.Cancelled;

    public override string? Failure(RunContext run) => Job(run) is { State: JobState.Failed } failed ? $"training failed: {failed.Error}" : null;

    public override Task ReconcileAsync(RunContext run, CancellationToken ct) =>
        Job(run) is null && _request is not null ? run.AgainAsync(_request, "no trainer took the training run", ct) : Task.CompletedTask;

    private static LedgerJob<StartTraining>? Job(RunContext run) => run.Ledger.Jobs.Get<StartTraining>(JobKinds.Training, run.Request.Training.RunName);
}

/// <summary>
/// The evaluator scores every checkpoint on arrival (validation and the tasks it is configured with); finished when
/// the final checkpoint is evaluated: validation and every configured task scored (or failed), not just the first score.
/// </summary>
public sealed class EvaluateJob : JobNode
{
    public const string Node = "evaluate";

    // Resuming a run whose training had finished: a crash may have lost the final checkpoint's announcement before it
    // was evaluated. Announce it again; the evaluator skips what it did.
    public override Task StartAsync(RunContext run, CancellationToken ct) =>
        run.FinishedBefore(TrainJob.Node) ? RunCheckpoints.AnnounceFinalAgainAsync(run, run.Request.Training.RunName, ct) : Task.CompletedTask;

    public override bool IsDone(RunContext run) => run.Ledger.Documents.Get(LedgerKeys.Evaluated(RunCheckpoints.FinalUri(run))) is not null;
}

/// <summary>
/// Asks the evaluator for the run's tasks on every checkpoint of a run (over RabbitMQ the services have no tasks of
/// their own; an evaluator configured with them skips what it scored on arrival), and waits until each is scored or has failed.
/// </summary>
public sealed class ScoreTasksJob(RunTasks tasks, Func<RunRequest, string> runName) : JobNode
{
    private List<(string Checkpoint, RunTasks.Staged Task)>? _missing;

    public override async Task StartAsync(RunContext run, CancellationToken ct)
    {
        var staged = await tasks.StageAsync(run, ct);
        var checkpoints = await RunCheckpoints.OfAsync(run, runName(run.Request), ct);
        _missing = checkpoints.SelectMany(c => staged.Where(t => !Scored(run, c, t)).Select(t => (Checkpoint: c, Task: t))).ToList();
        if (_missing.Count == 0) return;
        await run.PublishAsync(new EvaluateRequested([], _missing.Select(m => m.Checkpoint).Distinct().ToList(),
            _missing.Select(m => m.Task.Uri).Distinct().ToList(), LatestOnly: false, Force: false), ct);
    }

    public override bool IsDone(RunContext run) => _missing is not null && _missing.All(m => Scored(run, m.Checkpoint, m.Task));

    private static bool Scored(RunContext run, string checkpointUri, RunTasks.Staged t) => run.Ledger.Evaluations.HasEval(checkpointUri, t.Name, t.Version)
        || run.Ledger.Documents.Get(LedgerKeys.EvaluationFailure(checkpointUri, t.Name)) is not null
        || run.Ledger.Documents.Get(LedgerKeys.EvaluationFailure(checkpointUri, t.Uri)) is not null;
}

/// <summary>
/// One alignment job of the run's alignment phase (<see cref="RunRequest.DerivedRuns"/>: SFT or DPO of the final
/// checkpoint, a reward model, GRPO or PPO of the policy), asked of the alignment service; finished when what it made
/// is evaluated (a reward model is marked evaluated without tasks).
/// </summary>
/// <param name="method">Which of the run's alignments this node runs: its request's <see cref="RunAlignment"/>.</param>
/// <param name="output">The run it makes.</param>
/// <param name="from">The checkpoint (run, step) it starts from.</param>
public sealed class AlignJob(Func<RunRequest, RunAlignment?> method, Func<RunRequest, string?> output, Func<RunRequest, (string Run, long Step)> from) : JobNode
{
    public const string Node = "align";

    public override async Task StartAsync(RunContext run, CancellationToken ct)
    {
        var made = output(run.Request)!;
        // A resumed run whose alignment had finished may have lost the aligned checkpoint's announcement before it was
        // evaluated: announce it again. Otherwise ask for it; the alignment service names the job by its inputs and
        // does not rerun a completed one.
        if ((await RunCheckpoints.OfAsync(run, made, ct)).Count > 0)
        {
            await RunCheckpoints.AnnounceFinalAgainAsync(run, made, ct);
            return;
        }
        var alignment = method(run.Request)!;
        var (baseRun, baseStep) = from(run.Request);
        await run.PublishAsync(new AlignmentRequested(made, RunCheckpoints.Uri(baseRun, baseStep), alignment.Method, alignment.DataUri, alignment.ConfigJson, run.RunId), ct);
    }

    public override bool IsDone(RunContext run) =>
        run.Ledger.Documents.KeysWithPrefix(LedgerKeys.Evaluated(Model.Checkpoints.RunFolder(output(run.Request)!) + "/")).Count > 0;

    public override string? Failure(RunContext run)
    {
        foreach (var name in run.Ledger.Jobs.Names(JobKinds.Alignment).Where(n => n.StartsWith(output(run.Request) + ":", StringComparison.Ordinal)))
            if (run.Ledger.Jobs.Get<AlignmentRequested>(JobKinds.Alignment, name) is { State: JobState.Failed } a && a.Request.RunId == run.RunId)
                return $"alignment {a.Request.Method} failed: {a.Error}";
        return null;
    }
}

/// <summary>
/// The releases of the final checkpoint the run asks for (--release), one trainer job per target; finished when every
/// job has completed and every quantized checkpoint has been evaluated (the evaluator scores it on arrival).
/// </summary>
public sealed class ReleaseJob : JobNode
{
    public const string Node = "release";

    public override async Task StartAsync(RunContext run, CancellationToken ct)
    {
        foreach (var target in Targets(run))
        {
            // A resumed run whose quantized copy was made may have lost its announcement before it was evaluated.
            if (Job(run, target)?.State == JobState.Completed)
            {
                if (QuantizedRun(run, target) is { } quantized) await RunCheckpoints.AnnounceFinalAgainAsync(run, quantized, ct);
                continue;
            }
            await run.PublishAsync(Request(run, target), ct);
        }
    }

    public override bool IsDone(RunContext run) => Targets(run).All(target => Job(run, target)?.State == JobState.Completed &&
        (QuantizedRun(run, target) is not { } quantized
         || run.Ledger.Documents.KeysWithPrefix(LedgerKeys.Evaluated(Model.Checkpoints.RunFolder(quantized) + "/")).Count > 0));

    public override string? Failure(RunContext run) =>
        Targets(run).Select(target => Job(run, target) is { State: JobState.Failed } failed ? $"release {target} failed: {failed.Error}" : null)
            .FirstOrDefault(error => error is not null);

    // A release request no trainer took (its job is not in the ledger) was lost: ask again.
    public override async Task ReconcileAsync(RunContext run, CancellationToken ct)
    {
        foreach (var target in Targets(run).Where(t => Job(run, t) is null))
            await run.AgainAsync(Request(run, target), $"release {target} was not taken by any trainer", ct);
    }

    private static IEnumerable<Release.ReleaseTarget> Targets(RunContext run) => (run.Request.Release ?? []).Select(Release.ReleaseTarget.Parse);

    private static ReleaseRequested Request(RunContext run, Release.ReleaseTarget target) => new(RunCheckpoints.FinalUri(run), target.Text, run.RunId);

    private static string? QuantizedRun(RunContext run, Release.ReleaseTarget target) =>
        target.Quantization is { } q ? Release.CheckpointQuantizer.RunName(run.Request.Training.RunName, q) : null;

    private static LedgerJob<ReleaseRequested>? Job(RunContext run, Release.ReleaseTarget target) =>
        run.Ledger.Jobs.Get<ReleaseRequested>(JobKinds.Release, Trainer.ReleaseWorker.JobName(RunCheckpoints.FinalUri(run), target.Text));
}

/// <summary>A run's checkpoints as the jobs of its graph find them.</summary>
internal static class RunCheckpoints
{
    /// <summary>The URI of the checkpoint the run's training ends with (its last step).</summary>
    public static string FinalUri(RunContext run) => Uri(run.Request.Training.RunName, run.Request.Training.MaxSteps);

    /// <summary>The URI of a run's checkpoint at a step (checkpoints/&lt;run&gt;/step-N).</summary>
    public static string Uri(string runName, long step) => Model.Checkpoints.Folder(Model.Checkpoints.RunFolder(runName), step).Replace('\\', '/');

    public static Task<IReadOnlyList<string>> OfAsync(RunContext run, string runName, CancellationToken ct) =>
        Model.Checkpoints.ListAsync(run.Store, Model.Checkpoints.RunFolder(runName), ct);

    public static async Task AnnounceFinalAgainAsync(RunContext run, string runName, CancellationToken ct)
    {
        var uri = (await OfAsync(run, runName, ct)).LastOrDefault();
        if (uri is null || run.Ledger.Documents.Get(LedgerKeys.Evaluated(uri)) is not null) return;
        run.Logger.LogInformation("run: announcing the final checkpoint {Checkpoint} again", uri);
        await run.PublishAsync(await Model.Checkpoints.SavedMessageAsync(run.Store, run.RunId, await run.Store.FetchFolderAsync(uri, ct), ct), ct);
    }
}

/// <summary>
/// The run's task files travel with the run, not with the evaluator's configuration: each is copied under
/// tasks/&lt;run&gt;/ in the data root with the data file it names, so an evaluator on another host can be asked for it
/// by URI (messages never carry host paths). lm-eval task files, which may name more files, and data outside the
/// task's folder are not copied; those tasks are scored only by an evaluator configured with them.
/// </summary>
public sealed class RunTasks(RunRequest request)
{
    /// <summary>A task of the run as the evaluator is asked for it: its URI under the data root, name and version, and the file it was copied from.</summary>
    public sealed record Staged(string Uri, string Name, string Version, string File);

    private IReadOnlyList<Staged>? _staged;

    public async Task<IReadOnlyList<Staged>> StageAsync(RunContext run, CancellationToken ct)
    {
        if (_staged is not null) return _staged;
        var staged = new List<Staged>();
        foreach (var file in request.EvalTasks ?? [])
        {
            var task = TaskLoader.Load(file);
            var dataPath = TaskLoader.DataPath(task);
            var data = Path.GetRelativePath(Path.GetDirectoryName(task.SourceFile)!, dataPath);
            if (LmEvalTaskFile.IsLmEval(file) || data.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(data))
            {
                run.Logger.LogWarning("run: task file {File} stays on this host: only an evaluator configured with it scores it", file);
                continue;
            }
            var folder = $"tasks/{request.RunId}";
            var uri = $"{folder}/{Path.GetFileName(file)}";
            await CopyAsync(run.Store, file, uri, ct);
            await CopyAsync(run.Store, dataPath, $"{folder}/{data.Replace('\\', '/')}", ct);
            staged.Add(new Staged(uri, task.Name, task.Version.ToString(), file));
        }
        return _staged = staged;
    }

    /// <summary>The contamination stage's settings: every task, by its staged URI or (not staged) its file as the evaluator is configured with it.</summary>
    public async Task<object> ContaminationSettingsAsync(RunContext run, CancellationToken ct)
    {
        var staged = await StageAsync(run, ct);
        var references = (request.EvalTasks ?? []).Select(file => staged.FirstOrDefault(s => s.File == file)?.Uri ?? file).ToList();
        return new ContaminationStage.Settings(references, request.RemoveContaminated);
    }

    private static Task CopyAsync(ShardStore store, string path, string uri, CancellationToken ct) => store.CommitFileAsync(uri, async s =>
    {
        await using var source = File.OpenRead(path);
        await source.CopyToAsync(s, ct);
    }, ct);
}
