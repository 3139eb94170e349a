using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Bpe;
using Pipeline.Model;

namespace Pipeline.Alignment;

/// <summary>
/// The alignment jobs of the trainer service: `AlignmentRequested` runs SFT or DPO and announces the checkpoint;
/// configured rules turn base checkpoints into `AlignmentRequested` messages.
/// </summary>
public sealed class AlignmentModule : IStageModule
{
    public string Name => "alignment";

    public void AddServices(IServiceCollection services, IConfiguration configuration)
    {
        // A misspelled key (say "MinSteps") would otherwise be ignored and the rule would run with defaults.
        var options = StrictConfig.Bind<AlignmentOptions>(configuration, AlignmentOptions.Section);
        foreach (var rule in options.Rules)
        {
            if (rule.Run.Length == 0 || rule.Data.Length == 0)
                throw new ArgumentException($"{AlignmentOptions.Section}:Rules: every rule needs Run and Data (got Run='{rule.Run}', Data='{rule.Data}')");
            if (!AlignmentConfig.Methods.Contains(rule.Method))
                throw new ArgumentException($"{AlignmentOptions.Section}:Rules for run '{rule.Run}': method '{rule.Method}' is not {string.Join(", ", AlignmentConfig.Methods)}");
        }
        services.AddSingleton(options);
        services.AddLedgerJobWorker<AlignmentRequested, AlignmentWorker>();
    }

    public void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits)
    {
        bus.AddLedgerJobConsumer<AlignmentRequested>("alignment-requested");
        bus.AddConsumer<AlignmentRuleConsumer>();
    }
}

/// <summary>
/// Applies the configured rules to each new checkpoint. Only base checkpoints count (an aligned checkpoint has a
/// method), so an aligned model never triggers another job; a repeated checkpoint message yields a repeated request,
/// which the job consumer skips.
/// </summary>
public sealed class AlignmentRuleConsumer(AlignmentOptions options, ILogger<AlignmentRuleConsumer> logger) : IConsumer<CheckpointSaved>
{
    public async Task Consume(ConsumeContext<CheckpointSaved> context)
    {
        var checkpoint = context.Message;
        if (checkpoint.Method is not null) return;
        foreach (var rule in options.Rules.Where(r => r.Run == checkpoint.RunName && checkpoint.Step >= r.MinStep))
        {
            logger.LogInformation("align: rule for {Run}: {Method} on {Data} after step {Step}", rule.Run, rule.Method, rule.Data, checkpoint.Step);
            await context.PublishBounded(new AlignmentRequested(rule.OutputRun(checkpoint.Step), checkpoint.Uri, rule.Method, rule.Data,
                JsonSerializer.Serialize(rule.Config with { Method = rule.Method }), checkpoint.RunId));
        }
    }
}

/// <summary>
/// Runs alignment jobs as ledger-tracked jobs, one at a time (they compete with training for the cores), and
/// publishes `CheckpointSaved` with the lineage (base checkpoint, method, data hash), so the evaluator scores the
/// result like any checkpoint. URIs are relative to the data root; the base checkpoint's tokenizer is found by hash
/// under tokenizers/. A job is named by its run and a hash of base, method, data and config, so a repeated request
/// is not run again.
/// </summary>
public sealed class AlignmentWorker(ShardStore store, IBus bus, Ledger ledger, ILogger<AlignmentWorker> logger)
    : LedgerJobWorker<AlignmentRequested>(ledger, logger)
{
    private readonly SemaphoreSlim _oneAtATime = new(1);

    protected override string Kind => JobKinds.Alignment;


    protected override string NameOf(AlignmentRequested request) =>
        $"{request.RunName}:{StableId.Of(request.BaseCheckpointUri, request.Method, request.DataUri, request.ConfigJson)}";

    protected override async Task<long> RunJobAsync(AlignmentRequested request, CancellationToken ct)
    {
        await _oneAtATime.WaitAsync(ct);
        try
        {
            var config = AlignmentConfig.FromJson(request.ConfigJson) with { Method = request.Method.Split('+')[0] };
            // GRPO's reward model is named by URI: fetched like the base checkpoint (trained, perhaps, on another host).
            if (config.RewardModel is { } rewardModel && !Path.IsPathRooted(rewardModel))
                config = config with { RewardModel = await store.FetchFolderAsync(rewardModel, ct) };
            var basePath = await store.FetchFolderAsync(request.BaseCheckpointUri, ct);
            var hash = Checkpoints.ReadInfo(basePath).TokenizerHash;
            var tokenizerFolder = await RunArtifacts.FindTokenizerFolderAsync(store, Ledger, hash, ct)
                ?? throw new ArgumentException($"no tokenizer with hash {hash} for base checkpoint '{request.BaseCheckpointUri}'");
            // Every step's loss and figures (RL's reward, KL, entropy, ...) as the run's "align" metrics: the dashboard draws them.
            var result = new AlignmentJob(Logger).Run(basePath, TextTokenizer.Load(tokenizerFolder), await store.FetchFileAsync(request.DataUri, ct), config,
                store.Resolve(Checkpoints.RunFolder(request.RunName)), request.RunName, ct, step =>
                {
                    if (double.IsFinite(step.Loss)) Ledger.Evaluations.AddMetric(request.RunName, EvaluationStore.AlignmentKind, step.Step, "loss", step.Loss);
                    foreach (var (name, value) in step.Figures)
                        if (double.IsFinite(value)) Ledger.Evaluations.AddMetric(request.RunName, EvaluationStore.AlignmentKind, step.Step, name, value);
                });
            if (result.Adapter is { } adapter) await store.PublishFolderAsync(store.RelativeUri(adapter), ct);
            await Checkpoints.PublishAsync(store, result.Checkpoint, ct);
            await bus.PublishBounded(await Checkpoints.SavedMessageAsync(store, request.RunId ?? "", result.Checkpoint, ct), ct);
            return result.Info.Step;
        }
        finally
        {
            _oneAtATime.Release();
        }
    }
}
