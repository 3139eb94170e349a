using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Storage;
using Pipeline.Tokenizer;

namespace Pipeline.Evaluator;

public sealed class EvaluatorModule : IStageModule
{
    public string Name => "evaluator";

    public void AddServices(IServiceCollection services, IConfiguration configuration)
    {
    }

    // One evaluation at a time: a bounded worker that never competes with training for more than one core's share.
    public void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits) =>
        bus.AddConsumer<CheckpointSavedConsumer>().Endpoint(e => e.ConcurrentMessageLimit = 1);
}

/// <summary>Scores every new checkpoint once per (checkpoint, task, version) and records the result in the ledger.</summary>
public sealed class CheckpointSavedConsumer(ShardStore store, RunLedger ledger, ILogger<CheckpointSavedConsumer> logger) : IConsumer<CheckpointSaved>
{
    public async Task Consume(ConsumeContext<CheckpointSaved> context)
    {
        var message = context.Message;
        if (ledger.HasEval(message.Uri, PerplexityTask.Name, PerplexityTask.Version)) return;
        IReadOnlyDictionary<string, double> metrics;
        string? error = null;
        try
        {
            metrics = await PerplexityTask.RunAsync(store, store.Resolve(message.Uri), CorpusTokenizer.ManifestUri(message.RunId), context.CancellationToken);
            ledger.AddEval(message.RunName, message.Step, message.Uri, PerplexityTask.Name, PerplexityTask.Version, metrics);
        }
        catch (Exception e) when (e is InvalidDataException or FileNotFoundException or InvalidOperationException or ShardRejectedException)
        {
            error = e.Message;
            metrics = new Dictionary<string, double>();
            logger.LogError("eval: checkpoint {Checkpoint}: {Error}", message.Uri, e.Message);
        }
        await context.Publish(new EvaluationCompleted(message.RunName, message.Step, message.Uri, PerplexityTask.Name, PerplexityTask.Version, metrics, error));
    }
}
