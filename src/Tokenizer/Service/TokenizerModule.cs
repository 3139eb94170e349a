using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Runtime;

namespace Pipeline.Tokenizer;

public sealed class TokenizerModule : IStageModule
{
    public string Name => "tokenizer";

    public void AddServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(StrictConfig.Bind<TokenizerOptions>(configuration, TokenizerOptions.Section));
        services.AddSingleton<CorpusTokenizer>();
    }

    // Tokenization is ordered: one shard at a time, each added to the run's manifest before the next.
    public void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits)
    {
        bus.AddConsumer<TrainTokenizerConsumer>().Endpoint(e => e.ConcurrentMessageLimit = 1);
        bus.AddShardStage<TokenizeStage, DedupShardCreated, TokenShardCreated>(limits, m => m.Shard, Announce, ordered: true);
    }

    public static TokenShardCreated Announce(ShardRef shard, object? stats) =>
        stats is TokenShardStats s ? new(shard, s.TokenizerHash, s.TrainTokens, s.ValidationTokens) : throw new InvalidOperationException($"token shard {shard.Uri} has no token counts");
}

/// <summary>Trains a run's vocabulary, then tokenizes every dedup shard of the run that waited for it.</summary>
public sealed class TrainTokenizerConsumer(CorpusTokenizer corpus, TokenizeStage tokenize, Ledger ledger, ILogger<TrainTokenizerConsumer> logger)
    : IConsumer<TrainTokenizer>
{
    public async Task Consume(ConsumeContext<TrainTokenizer> context)
    {
        var message = context.Message;
        if (corpus.TokenizerOf(message.RunId) is { } existing)
            logger.LogInformation("tokenizer: run {Run} already has tokenizer {Hash}", message.RunId, existing.Hash);
        else
        {
            var shards = ledger.Artifacts.Shards(message.RunId, Contracts.StageNames.Dedup);
            var (_, hash, vocab) = await corpus.TrainAsync(message.RunId, shards, message.VocabSize, context.CancellationToken);
            logger.LogInformation("tokenizer: trained {Vocab} tokens for run {Run} ({Hash})", vocab, message.RunId, hash);
        }
        var (uri, tokenizerHash) = corpus.TokenizerOf(message.RunId)!.Value;
        var tokenizer = await tokenize.TokenizerAsync(message.RunId, context.CancellationToken);
        await context.PublishBounded(new TokenizerTrained(message.RunId, uri, tokenizerHash, tokenizer.VocabSize));
        foreach (var shard in ledger.Artifacts.Pending(message.RunId, Contracts.StageNames.Dedup, TokenizeStage.Name))
            await ShardStageConsumer<TokenizeStage, DedupShardCreated, TokenShardCreated>.RunAsync(tokenize, ledger, logger, shard, context, TokenizerModule.Announce, context.CancellationToken);
        await corpus.WriteManifestAsync(message.RunId, tokenizer, uri, context.CancellationToken);
    }
}
