using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Model;
using Pipeline.Storage;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Trainer;

/// <summary>
/// Runs training jobs outside the message handler (see <see cref="LedgerJobWorker{TRequest}"/>): a restarted service
/// resumes unfinished runs from their last checkpoint, and a repeated StartTraining never starts a run twice.
/// </summary>
public sealed class TrainingWorker(ShardStore store, IBus bus, Ledger ledger, ILogger<TrainingWorker> logger)
    : LedgerJobWorker<StartTraining>(ledger, logger)
{
    protected override string Kind => JobKinds.Training;

    protected override string NameOf(StartTraining request) => request.RunName;

    protected override async Task<long> RunJobAsync(StartTraining request, CancellationToken ct)
    {
        var config = StrictConfig.FromJson<TrainingConfig>(request.ConfigJson, $"StartTraining {request.RunName}: ConfigJson");
        var data = await TokenData.LoadAsync(store, request.ManifestUri, null, config.Model.Context, ct);
        config = config with { RunName = request.RunName };
        await Checkpoints.FetchAllAsync(store, Checkpoints.RunFolder(request.RunName), ct);
        var runFolder = store.Resolve(Checkpoints.RunFolder(request.RunName));
        // A teacher named by URI may have been trained on another host: fetch it like the run's own checkpoints.
        if (config.Distillation is { } distillation && !Path.IsPathRooted(distillation.Teacher))
            await store.FetchFolderAsync(distillation.Teacher, ct);
        // Resuming after a crash: checkpoints announced before it may never have been evaluated (the evaluator
        // died too, or the announcement was lost). Announce every one without the evaluated mark again; the
        // evaluator skips what it has already scored.
        foreach (var folder in Checkpoints.List(runFolder))
            if (Ledger.Documents.Get(LedgerKeys.Evaluated(store.RelativeUri(folder))) is null)
                await bus.PublishBounded(await Checkpoints.SavedMessageAsync(store, request.RunId, folder, ct), ct);
        var run = new TrainingRun(config, data, runFolder, Logger)
        {
            Reload = () => TokenData.LoadAsync(store, request.ManifestUri, data.TokenizerHash, config.Model.Context, ct),
            OnStep = async log =>
            {
                Ledger.Evaluations.AddMetric(request.RunName, "train", log.Step, "loss", log.Loss);
                Ledger.Evaluations.AddMetric(request.RunName, "train", log.Step, "tokens_per_second", log.TokensPerSecond);
                if (log.ValidationLoss is { } v) Ledger.Evaluations.AddMetric(request.RunName, "train", log.Step, "val_loss", v);
                await bus.PublishBounded(new TrainingProgress(request.RunName, log.Step, config.MaxSteps, log.Loss, log.TokensPerSecond));
            },
            // Not cancellable: a cancelled run saves a last checkpoint, and it must still be announced.
            OnCheckpoint = async (folder, _) =>
            {
                await Checkpoints.PublishAsync(store, folder);
                await bus.PublishBounded(await Checkpoints.SavedMessageAsync(store, request.RunId, folder));
            },
        };
        return await run.RunAsync(ct);
    }

    protected override Task OnFinishedAsync(StartTraining request, JobState state, long progress, string? error) =>
        bus.PublishBounded(new TrainingFinished(request.RunName, state.Name(), progress, error));
}
