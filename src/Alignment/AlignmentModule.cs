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

/// <summary>The alignment jobs of the trainer service: `AlignmentRequested` runs SFT or DPO and announces the checkpoint.</summary>
public sealed class AlignmentModule : IStageModule
{
    public string Name => "alignment";

    public void AddServices(IServiceCollection services, IConfiguration configuration)
    {
    }

    public void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits) =>
        bus.AddConsumer<AlignmentRequestedConsumer>().Endpoint(e => e.ConcurrentMessageLimit = 1);
}

/// <summary>
/// Runs an alignment job (short compared with pretraining, so inside the handler) and publishes `CheckpointSaved` with
/// the lineage (base checkpoint, method, data hash), so the evaluator scores it like any checkpoint. URIs are relative
/// to the data root; the base checkpoint's tokenizer is found by hash under tokenizers/.
/// </summary>
public sealed class AlignmentRequestedConsumer(ShardStore store, ILogger<AlignmentRequestedConsumer> logger) : IConsumer<AlignmentRequested>
{
    public async Task Consume(ConsumeContext<AlignmentRequested> context)
    {
        var request = context.Message;
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
        await context.Publish(new CheckpointSaved("", request.RunName, result.Info.Step, 0, store.RelativeUri(result.Checkpoint), sha, result.Info.TokenizerHash, null,
            request.BaseCheckpointUri, result.Info.Method, lineage.GetProperty("dataHash").GetString()));
    }
}
