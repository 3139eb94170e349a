using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Storage;
using Pipeline.Tokenizer;
using Pipeline.Trainer;

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
        var options = configuration.GetSection(AlignmentOptions.Section).Get<AlignmentOptions>() ?? new AlignmentOptions();
        foreach (var rule in options.Rules)
        {
            if (rule.Run.Length == 0 || rule.Data.Length == 0)
                throw new ArgumentException($"{AlignmentOptions.Section}:Rules: every rule needs Run and Data (got Run='{rule.Run}', Data='{rule.Data}')");
            if (rule.Method is not ("sft" or "dpo"))
                throw new ArgumentException($"{AlignmentOptions.Section}:Rules for run '{rule.Run}': method '{rule.Method}' is not sft or dpo");
        }
        services.AddSingleton(options);
    }

    public void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits)
    {
        bus.AddConsumer<AlignmentRequestedConsumer>().Endpoint(e => e.ConcurrentMessageLimit = 1);
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
            await context.Publish(new AlignmentRequested(rule.OutputRun(checkpoint.Step), checkpoint.Uri, rule.Method, rule.Data,
                JsonSerializer.Serialize(rule.Config with { Method = rule.Method }), checkpoint.RunId));
        }
    }
}

/// <summary>
/// Runs an alignment job (short compared with pretraining, so inside the handler) and publishes `CheckpointSaved` with
/// the lineage (base checkpoint, method, data hash), so the evaluator scores it like any checkpoint. URIs are relative
/// to the data root; the base checkpoint's tokenizer is found by hash under tokenizers/. A request already carried
/// out (same run, base, method, data and config) is not run again: a redelivery announces the same checkpoint.
/// </summary>
public sealed class AlignmentRequestedConsumer(ShardStore store, RunLedger ledger, ILogger<AlignmentRequestedConsumer> logger) : IConsumer<AlignmentRequested>
{
    public async Task Consume(ConsumeContext<AlignmentRequested> context)
    {
        var request = context.Message;
        var key = JobKey(request);
        if (ledger.Get(key) is { } done)
        {
            logger.LogInformation("align: {Run} from {Base} already done; announcing it again", request.RunName, request.BaseCheckpointUri);
            await context.Publish(JsonSerializer.Deserialize<CheckpointSaved>(done)!);
            return;
        }
        var config = (JsonSerializer.Deserialize<AlignmentConfig>(request.ConfigJson, new JsonSerializerOptions { PropertyNameCaseInsensitive = true }) ?? new AlignmentConfig())
            with { Method = request.Method.Split('+')[0] };
        var basePath = store.Resolve(request.BaseCheckpointUri);
        var hash = Checkpoints.ReadInfo(basePath).TokenizerHash;
        var tokenizerFolder = TextTokenizer.FindFolder(store.Resolve("tokenizers"), hash)
            ?? throw new ArgumentException($"no tokenizer with hash {hash} for base checkpoint '{request.BaseCheckpointUri}'");
        var result = new AlignmentJob(logger).Run(basePath, TextTokenizer.Load(tokenizerFolder), store.Resolve(request.DataUri), config,
            store.Resolve(TrainingWorker.RunFolder(request.RunName)), request.RunName);
        var (sha, _) = await ShardStore.HashFileAsync(Path.Combine(result.Checkpoint, "model.bin"));
        var lineage = JsonSerializer.Deserialize<JsonElement>(File.ReadAllText(Path.Combine(result.Checkpoint, "lineage.json")));
        var saved = new CheckpointSaved(request.RunId ?? "", request.RunName, result.Info.Step, 0, store.RelativeUri(result.Checkpoint), sha, result.Info.TokenizerHash, null,
            request.BaseCheckpointUri, result.Info.Method, lineage.GetProperty("dataHash").GetString());
        ledger.Set(key, JsonSerializer.Serialize(saved));
        await context.Publish(saved);
    }

    public static string JobKey(AlignmentRequested request) =>
        $"align:{request.RunName}:{StableId.Of(request.BaseCheckpointUri, request.Method, request.DataUri, request.ConfigJson)}";
}
