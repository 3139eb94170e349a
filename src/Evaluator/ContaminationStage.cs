using System.Text.Json;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.Rows;
using Pipeline.Contracts.V1;
using Pipeline.Evaluator.Tasks;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Evaluator;

/// <summary>
/// Before tokenization, over every dedup shard of a run: how many examples of each evaluation task the training
/// corpus already contains, so the report can put it next to each score (<see cref="Contamination"/>). Documents are
/// checked one row group at a time. With <see cref="Settings.Remove"/>, the ids of the documents that contain any
/// example go to a file the tokenizer skips.
/// </summary>
public sealed class ContaminationStage(ShardStore store, Ledger ledger, CheckpointEvaluator evaluator, ILogger<ContaminationStage> logger) : IRunStage
{
    public static string Name => "contamination";

    /// <param name="Tasks">Task files as the evaluator is asked for them: URIs under the data root (the run's staged copies) or files it is configured with.</param>
    /// <param name="Remove">Drop the training documents that contain evaluation examples (Pipeline:Decontaminate:Remove).</param>
    public sealed record Settings(IReadOnlyList<string> Tasks, bool Remove);

    public async Task<object?> RunAsync(string runId, IReadOnlyList<ShardRef> inputs, string settingsJson, CancellationToken ct)
    {
        var settings = JsonSerializer.Deserialize<Settings>(settingsJson) ?? throw new ArgumentException($"{Name}: no settings");
        var tasks = new List<EvalTask>();
        foreach (var task in settings.Tasks)
        {
            try
            {
                tasks.Add(TaskLoader.Load(await evaluator.ResolveRequestedTaskAsync(task, ct)));
            }
            catch (Exception e) when (e is IOException or ArgumentException or InvalidDataException or UnauthorizedAccessException)
            {
                // A task that stayed on the coordinator's host (an lm-eval task file) is measured only where it is.
                logger.LogWarning("{Stage}: task {Task} is not available to this evaluator ({Error}); its overlap is not measured", Name, task, e.Message);
            }
        }
        var index = new Contamination.Index(tasks);
        var contaminated = new SortedSet<string>(StringComparer.Ordinal);
        // Duplicates superseded by a copy with a smaller id are not trained on, so they are not counted either.
        var superseded = ledger.Superseded.Ids(runId);
        foreach (var shard in inputs)
            await foreach (var group in store.ReadRowGroupsAsync<CleanDocument>(shard, ct))
                foreach (var document in group)
                    if (!superseded.Contains(document.Id) && index.Check(document.Text)) contaminated.Add(document.Id);
        var result = index.Result();
        foreach (var task in result)
            logger.LogInformation("{Stage}: {Task}: {Contaminated} of {Examples} examples overlap the training corpus", Name, task.Task, task.Contaminated, task.Examples);
        if (settings.Remove)
        {
            var list = await ExcludedDocuments.WriteAsync(store, ledger.Documents, LedgerKeys.ExcludedDocuments(runId), $"decontamination/{runId}/excluded-documents.json", contaminated, ct);
            logger.LogInformation("{Stage}: {Documents} training documents that contain evaluation examples are removed before tokenization ({Uri})", Name, list.Documents, list.Uri);
        }
        ledger.Documents.Set(LedgerKeys.Contamination(runId), JsonSerializer.Serialize(result));
        return result;
    }
}
