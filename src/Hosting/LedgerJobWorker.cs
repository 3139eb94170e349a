using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Pipeline.Runtime;

namespace Pipeline.Hosting;

/// <summary>
/// Runs long jobs (a training run, a crawl, an alignment) outside the message handler, which acknowledges at once: a
/// message left unacknowledged past RabbitMQ's consumer_timeout (30 minutes by default) is redelivered and its channel
/// closed. The ledger tracks each job under "<c>Kind</c>:<c>name</c>": a repeated or redelivered request never starts
/// a job twice, a completed job is not run again, and a restarted service resumes the jobs that were running (each
/// job resumes from its own saved state: checkpoints, the crawl frontier). MassTransit's job consumers would need a
/// persistent saga store, and none is on this package mirror.
/// </summary>
public abstract class LedgerJobWorker<TRequest>(Ledger ledger, ILogger logger) : BackgroundService where TRequest : class
{
    /// <summary>The run ledger, for jobs that record more than their state.</summary>
    protected Ledger Ledger => ledger;

    protected ILogger Logger => logger;

    private readonly ConcurrentDictionary<string, (Task Task, CancellationTokenSource Cancel)> _running = new();
    private readonly Lock _gate = new();
    private CancellationToken _stopping;

    /// <summary>The ledger key prefix and log name of this kind of job ("training", "crawl", "alignment").</summary>
    protected abstract string Kind { get; }

    /// <summary>The job's name, unique within its kind (a run name).</summary>
    protected abstract string NameOf(TRequest request);

    /// <summary>Runs or resumes the job; returns a progress figure for <see cref="OnFinishedAsync"/> (steps, pages).</summary>
    protected abstract Task<long> RunJobAsync(TRequest request, CancellationToken ct);

    /// <summary>Called when a job ends, however it ended, except when the service stops under it.</summary>
    protected virtual Task OnFinishedAsync(TRequest request, JobState state, long progress, string? error) => Task.CompletedTask;

    public IReadOnlyCollection<string> Running => _running.Keys.ToList();

    /// <summary>Starts a job, or explains why not.</summary>
    public string? TryStart(TRequest request)
    {
        var name = NameOf(request);
        lock (_gate)
        {
            if (_running.ContainsKey(name)) return $"{Kind} '{name}' is already running; the repeated request is refused";
            if (State(name)?.State == JobState.Completed) return $"{Kind} '{name}' has already completed";
            var job = new LedgerJob<TRequest>(request, JobState.Running, null);
            ledger.Jobs.Put(Kind, name, job);
            Launch(name, job);
            return null;
        }
    }

    public bool Cancel(string name)
    {
        if (!_running.TryGetValue(name, out var job)) return false;
        job.Cancel.Cancel();
        return true;
    }

    public Task WaitAsync(string name) => _running.TryGetValue(name, out var job) ? job.Task : Task.CompletedTask;

    /// <summary>Resumes a job whose ledger state says running (at start-up, for every job of this kind).</summary>
    public void ResumeIfUnfinished(string name)
    {
        lock (_gate)
        {
            if (_running.ContainsKey(name) || State(name) is not { State: JobState.Running } job) return;
            logger.LogInformation("{Kind}: resuming {Name}", Kind, name);
            Launch(name, job);
        }
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        foreach (var name in ledger.Jobs.Names(Kind))
            ResumeIfUnfinished(name);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Stopping the service stops its jobs and waits for them (within the host's shutdown timeout): a training run
    /// writes a checkpoint at its current step, a crawl commits what it fetched. Without the wait the process could
    /// exit under a job still computing.
    /// </summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        var jobs = _running.Values.Select(j => j.Task).ToArray();
        if (jobs.Length == 0) return;
        logger.LogInformation("{Kind}: stopping {Count} job(s)", Kind, jobs.Length);
        await Task.WhenAny(Task.WhenAll(jobs), Task.Delay(Timeout.Infinite, cancellationToken));
    }

    private LedgerJob<TRequest>? State(string name) => ledger.Jobs.Get<TRequest>(Kind, name);

    private void Launch(string name, LedgerJob<TRequest> job)
    {
        var cancel = CancellationTokenSource.CreateLinkedTokenSource(_stopping);
        // Registered before it starts, so a job that ends at once still finds (and removes) its own entry.
        var registered = new TaskCompletionSource();
        var task = Task.Run(async () =>
        {
            await registered.Task;
            var state = JobState.Completed;
            string? error = null;
            long progress = 0;
            try
            {
                progress = await RunJobAsync(job.Request, cancel.Token);
                if (cancel.IsCancellationRequested) state = JobState.Cancelled;
            }
            catch (Exception e) when (e is not OperationCanceledException || !_stopping.IsCancellationRequested)
            {
                state = e is OperationCanceledException ? JobState.Cancelled : JobState.Failed;
                error = e is OperationCanceledException ? null : e.Message;
                if (error is not null) logger.LogError(e, "{Kind}: {Name} failed", Kind, name);
            }
            catch (OperationCanceledException)
            {
                // The service is stopping: the job stays "running" and resumes at the next start.
            }
            _running.TryRemove(name, out _);
            if (_stopping.IsCancellationRequested) return;
            ledger.Jobs.Put(Kind, name, job with { State = state, Error = error });
            await OnFinishedAsync(job.Request, state, progress, error);
        });
        _running[name] = (task, cancel);
        registered.SetResult();
    }
}
