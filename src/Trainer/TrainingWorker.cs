using System.Collections.Concurrent;
using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Storage;

namespace Pipeline.Trainer;

/// <summary>
/// Runs training jobs outside the message handler, so no StartTraining message stays unacknowledged for hours
/// (RabbitMQ's consumer_timeout). The ledger tracks each job; a restarted service resumes unfinished ones from
/// their last checkpoint, and a repeated StartTraining never starts a run twice.
/// </summary>
public sealed class TrainingWorker(ShardStore store, RunLedger ledger, IBus bus, ILogger<TrainingWorker> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<string, (Task Task, CancellationTokenSource Cancel)> _running = new();
    private readonly Lock _gate = new();
    private CancellationToken _stopping;

    public static string JobKey(string runName) => $"training:{runName}";

    public static string RunFolder(string runName) => $"checkpoints/{runName}";

    public IReadOnlyCollection<string> Running => _running.Keys.ToList();

    /// <summary>Starts a run, or explains why not.</summary>
    public string? TryStart(StartTraining request)
    {
        lock (_gate)
        {
            var state = ledger.Get(JobKey(request.RunName));
            if (_running.ContainsKey(request.RunName))
                return $"training run '{request.RunName}' is already running; a second StartTraining is refused";
            if (state is not null && JsonSerializer.Deserialize<TrainingJob>(state)?.State == "completed")
                return $"training run '{request.RunName}' has already completed";
            var job = new TrainingJob(request, "running", null);
            ledger.Set(JobKey(request.RunName), JsonSerializer.Serialize(job));
            Launch(job);
            return null;
        }
    }

    public bool Cancel(string runName)
    {
        if (!_running.TryGetValue(runName, out var job)) return false;
        job.Cancel.Cancel();
        return true;
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        foreach (var runName in ledger.KeysWithPrefix("training:").Select(k => k["training:".Length..]))
            ResumeIfUnfinished(runName);
        return Task.CompletedTask;
    }

    /// <summary>Resumes a job whose ledger state says running (called at start-up for known runs).</summary>
    public void ResumeIfUnfinished(string runName)
    {
        lock (_gate)
        {
            var state = ledger.Get(JobKey(runName));
            if (state is null || _running.ContainsKey(runName)) return;
            var job = JsonSerializer.Deserialize<TrainingJob>(state);
            if (job?.State == "running") Launch(job);
        }
    }

    public Task WaitAsync(string runName) => _running.TryGetValue(runName, out var job) ? job.Task : Task.CompletedTask;

    private void Launch(TrainingJob job)
    {
        var request = job.Request;
        var cancel = CancellationTokenSource.CreateLinkedTokenSource(_stopping);
        // Registered before it starts, so a job that ends at once still finds (and removes) its own entry.
        var registered = new TaskCompletionSource();
        var task = Task.Run(async () =>
        {
            await registered.Task;
            string state = "completed";
            string? error = null;
            long step = 0;
            try
            {
                var config = JsonSerializer.Deserialize<TrainingConfig>(request.ConfigJson)!;
                var data = await TokenData.LoadAsync(store, request.ManifestUri, null, config.Model.Context, cancel.Token);
                config = config with { RunName = request.RunName };
                var run = new TrainingRun(config, data, store.Resolve(RunFolder(request.RunName)), logger)
                {
                    Reload = () => TokenData.LoadAsync(store, request.ManifestUri, data.TokenizerHash, config.Model.Context, cancel.Token),
                    OnStep = async log =>
                    {
                        ledger.AddMetric(request.RunName, "train", log.Step, "loss", log.Loss);
                        ledger.AddMetric(request.RunName, "train", log.Step, "tokens_per_second", log.TokensPerSecond);
                        if (log.ValidationLoss is { } v) ledger.AddMetric(request.RunName, "train", log.Step, "val_loss", v);
                        await bus.Publish(new TrainingProgress(request.RunName, log.Step, config.MaxSteps, log.Loss, log.TokensPerSecond));
                    },
                    OnCheckpoint = async (folder, info) =>
                    {
                        var (sha, _) = await ShardStore.HashFileAsync(Path.Combine(folder, "model.bin"));
                        await bus.Publish(new CheckpointSaved(request.RunId, request.RunName, info.Step, info.TokensSeen, store.RelativeUri(folder), sha,
                            info.TokenizerHash, info.ValidationLoss));
                    },
                };
                step = await run.RunAsync(cancel.Token);
                if (cancel.IsCancellationRequested) state = "cancelled";
            }
            catch (Exception e)
            {
                state = "failed";
                error = e.Message;
                logger.LogError(e, "train: run {Run} failed", request.RunName);
            }
            // A service shutting down leaves the job "running", so the next start resumes it.
            if (!_stopping.IsCancellationRequested)
                ledger.Set(JobKey(request.RunName), JsonSerializer.Serialize(job with { State = state, Error = error }));
            _running.TryRemove(request.RunName, out _);
            await bus.Publish(new TrainingFinished(request.RunName, state, step, error));
        });
        _running[request.RunName] = (task, cancel);
        registered.SetResult();
    }
}

public sealed record TrainingJob(StartTraining Request, string State, string? Error);
