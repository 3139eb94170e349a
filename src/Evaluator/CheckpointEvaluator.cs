using Microsoft.Extensions.Logging;
using Pipeline.Evaluator.Tasks;
using Pipeline.Runtime;
using Pipeline.Model;
using Pipeline.Storage;
using Pipeline.Bpe;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Evaluator;

/// <summary>One result of a sweep: metrics, or the error that stopped this (checkpoint, task) and only it.</summary>
public sealed record EvalOutcome(string RunName, long Step, string CheckpointUri, string Task, string Version, IReadOnlyDictionary<string, double> Metrics, string? Error);

/// <summary>
/// Scores checkpoints on tasks, once per (checkpoint, task, version) unless forced, recording results in the ledger.
/// A missing or corrupt checkpoint, a task file with errors or a tokenizer mismatch fails that item with a clear
/// error; the sweep goes on with the rest.
/// </summary>
public sealed class CheckpointEvaluator(ShardStore store, Ledger ledger, EvaluatorOptions options, ILogger<CheckpointEvaluator> logger)
{
    public const string ValidationTask = EvalMetrics.ValidationTask;

    /// <summary>Ledger key set when a new checkpoint's evaluation (validation and every configured task) has finished, failures included.</summary>
    public static string EvaluatedKey(string checkpointUri) => LedgerKeys.Evaluated(checkpointUri);

    /// <summary>The URIs of a run's checkpoints, oldest first.</summary>
    public Task<IReadOnlyList<string>> CheckpointsOfAsync(string runName, CancellationToken ct = default) =>
        Checkpoints.ListAsync(store, Checkpoints.RunFolder(runName), ct);

    public async Task<IReadOnlyList<string>> RunsWithCheckpointsAsync(CancellationToken ct = default) =>
        (await store.ListFoldersAsync("checkpoints", ct)).Select(uri => uri["checkpoints/".Length..]).ToList();

    public async Task<IReadOnlyList<EvalOutcome>> EvaluateAsync(string checkpointUri, string? runId, IEnumerable<string> taskFiles, bool includeValidation, bool force, CancellationToken ct)
    {
        var outcomes = new List<EvalOutcome>();
        CheckpointInfo info;
        Gpt model;
        TextTokenizer? tokenizer = null;
        string folder;
        try
        {
            folder = await store.FetchFolderAsync(checkpointUri, ct);
            if (!Directory.Exists(folder)) throw new InvalidDataException($"checkpoint '{checkpointUri}' does not exist");
            (model, info) = Checkpoints.Load(folder, CPU);
            tokenizer = await FindTokenizerAsync(info.TokenizerHash, ct);
        }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or System.Text.Json.JsonException or ShardRejectedException)
        {
            logger.LogError("eval: {Error}", e.Message);
            outcomes.Add(new EvalOutcome("", 0, checkpointUri, "*", "", new Dictionary<string, double>(), e.Message));
            return RecordFailures(outcomes);
        }
        using (model)
        {
            if (includeValidation && !string.IsNullOrEmpty(runId) && (force || !ledger.Evaluations.HasEval(checkpointUri, ValidationTask, PerplexityTask.Version)))
                outcomes.Add(await RunOneAsync(info, checkpointUri, ValidationTask, PerplexityTask.Version, () => PerplexityTask.RunAsync(store, folder, RunArtifacts.TokenManifestUri(runId), ct)));
            foreach (var file in taskFiles)
            {
                EvalTask task;
                try
                {
                    task = TaskLoader.Load(file);
                }
                catch (InvalidDataException e)
                {
                    logger.LogError("eval: {Error}", e.Message);
                    outcomes.Add(new EvalOutcome(info.RunName, info.Step, checkpointUri, file, "", new Dictionary<string, double>(), e.Message));
                    continue;
                }
                if (!force && ledger.Evaluations.HasEval(checkpointUri, task.Name, task.Version.ToString())) continue;
                if (tokenizer is null)
                {
                    var error = $"no tokenizer with hash {info.TokenizerHash} under '{store.Resolve("tokenizers")}'; refusing to score checkpoint '{checkpointUri}' with another tokenizer";
                    outcomes.Add(new EvalOutcome(info.RunName, info.Step, checkpointUri, task.Name, task.Version.ToString(), new Dictionary<string, double>(), error));
                    continue;
                }
                var runner = new TaskRunner(model, tokenizer);
                outcomes.Add(await RunOneAsync(info, checkpointUri, task.Name, task.Version.ToString(), () => runner.RunAsync(task, ct)));
            }
        }
        return RecordFailures(outcomes);
    }

    /// <summary>The ledger keeps why a task could not be scored, so a run waiting for it (on any host, after any restart) stops waiting.</summary>
    private List<EvalOutcome> RecordFailures(List<EvalOutcome> outcomes)
    {
        foreach (var failed in outcomes.Where(o => o.Error is not null))
            ledger.Documents.Set(LedgerKeys.EvaluationFailure(failed.CheckpointUri, failed.Task), failed.Error!);
        return outcomes;
    }

    private async Task<EvalOutcome> RunOneAsync(CheckpointInfo info, string uri, string task, string version, Func<Task<IReadOnlyDictionary<string, double>>> run)
    {
        try
        {
            var metrics = await run();
            ledger.Evaluations.AddEval(info.RunName, info.Step, uri, task, version, metrics);
            logger.LogInformation("eval: {Run} step {Step} {Task}: {Metrics}", info.RunName, info.Step, task, string.Join(", ", metrics.Select(kv => $"{kv.Key} {kv.Value:G4}")));
            return new EvalOutcome(info.RunName, info.Step, uri, task, version, metrics, null);
        }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or InvalidOperationException or ShardRejectedException or HttpRequestException)
        {
            logger.LogError("eval: {Run} step {Step} {Task}: {Error}", info.RunName, info.Step, task, e.Message);
            return new EvalOutcome(info.RunName, info.Step, uri, task, version, new Dictionary<string, double>(), e.Message);
        }
    }

    /// <summary>
    /// The tokenizer with the checkpoint's hash (<see cref="RunArtifacts.FindTokenizerFolderAsync"/>), or null. Loaded once per hash: a
    /// sweep over a run's checkpoints would otherwise load the same tokenizer for each. A miss is not remembered (the
    /// tokenizer may be written later).
    /// </summary>
    public async Task<TextTokenizer?> FindTokenizerAsync(string hash, CancellationToken ct = default)
    {
        if (_tokenizers.TryGetValue(hash, out var cached)) return cached;
        if (await RunArtifacts.FindTokenizerFolderAsync(store, ledger, hash, ct) is not { } folder) return null;
        return _tokenizers[hash] = TextTokenizer.Load(folder);
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, TextTokenizer> _tokenizers = new();

    public IReadOnlyList<string> ConfiguredTasks => options.Tasks;

    /// <summary>
    /// A task named in a message: a task file from this service's configuration (its tasks or a schedule's, by path or
    /// by file name), else a URI under the storage root, confined like a shard, fetched with the files beside it
    /// (its data) when another host staged it. Any other host path is refused.
    /// </summary>
    public async Task<string> ResolveRequestedTaskAsync(string task, CancellationToken ct = default)
    {
        var configured = options.Tasks.Concat(options.Schedules.SelectMany(s => s.Tasks)).Distinct().ToList();
        if (configured.Contains(task)) return task;
        if (configured.FirstOrDefault(t => Path.GetFileName(t) == task || Path.GetFileNameWithoutExtension(t) == task) is { } byName) return byName;
        var path = store.Resolve(task);
        if (task.LastIndexOf('/') is > 0 and var slash) await store.FetchTreeAsync(task[..slash], ct);
        else await store.FetchFileAsync(task, ct);
        return path;
    }
}
