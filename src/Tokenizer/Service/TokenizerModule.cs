using Pipeline.Bpe;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Tokenizer;

public sealed class TokenizerModule : IStageModule
{
    public string Name => "tokenizer";

    public void AddServices(IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(StrictConfig.Bind<TokenizerOptions>(configuration, TokenizerOptions.Section));
        services.AddSingleton<CorpusTokenizer>();
    }

    // Training and tokenization share one ordered endpoint so a shard is never tokenized with a half-trained vocabulary.
    public void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits)
    {
        bus.AddConsumer<TrainTokenizerConsumer>().Endpoint(e => e.ConcurrentMessageLimit = 1);
        bus.AddConsumer<DedupShardConsumer>().Endpoint(e =>
        {
            e.ConcurrentMessageLimit = 1;
            e.PrefetchCount = limits.PrefetchCount;
        });
    }
}

/// <summary>Trains a run's vocabulary, then tokenizes every dedup shard of the run that is still waiting.</summary>
public sealed class TrainTokenizerConsumer(CorpusTokenizer corpus, ShardStore store, RunLedger ledger, ILogger<TrainTokenizerConsumer> logger)
    : IConsumer<TrainTokenizer>
{
    public async Task Consume(ConsumeContext<TrainTokenizer> context)
    {
        var message = context.Message;
        var existing = corpus.TokenizerOf(message.RunId);
        string uri, hash;
        if (existing is { } e)
        {
            (uri, hash) = e;
            logger.LogInformation("tokenizer: run {Run} already has tokenizer {Hash}", message.RunId, hash);
        }
        else
        {
            var shards = ledger.Shards(message.RunId, Contracts.StageNames.Dedup);
            var (u, h, vocab) = await corpus.TrainAsync(message.RunId, shards, message.VocabSize, context.CancellationToken);
            (uri, hash) = (u, h);
            logger.LogInformation("tokenizer: trained {Vocab} tokens for run {Run} ({Hash})", vocab, message.RunId, hash);
        }
        var tokenizer = TextTokenizer.Load(await store.FetchFolderAsync(uri, context.CancellationToken));
        await context.PublishBounded(new TokenizerTrained(message.RunId, uri, hash, tokenizer.VocabSize));
        foreach (var shard in ledger.Pending(message.RunId, Contracts.StageNames.Dedup, CorpusTokenizer.Stage))
            await TokenizeAsync(corpus, ledger, tokenizer, uri, shard, context);
        await corpus.WriteManifestAsync(message.RunId, tokenizer, uri, context.CancellationToken);
    }

    internal static async Task TokenizeAsync(CorpusTokenizer corpus, RunLedger ledger, TextTokenizer tokenizer, string uri, ShardRef shard, ConsumeContext context)
    {
        // The shard goes into the manifest (and the manifest into the store) before the input counts as done: a
        // coordinator on another host that sees every input done then reads a manifest that lists them all.
        var result = await new ShardStep(ledger, CorpusTokenizer.Stage).RunAsync(shard, ct => corpus.ProcessAsync(shard, tokenizer, ct),
            (output, stats) => context.PublishBounded(new TokenShardCreated(output, tokenizer.Hash, ((TokenShardStats)stats!).TrainTokens, ((TokenShardStats)stats!).ValidationTokens)),
            context.CancellationToken, _ => corpus.WriteManifestAsync(shard.RunId, tokenizer, uri, context.CancellationToken));
        if (result is null) return;
        await context.PublishBounded(new InputProcessed(shard.RunId, CorpusTokenizer.Stage, shard.ShardId, result.Outputs.Count));
    }
}

/// <summary>Tokenizes a dedup shard once its run has a vocabulary; before that the shard waits in the ledger.</summary>
public sealed class DedupShardConsumer(CorpusTokenizer corpus, ShardStore store, RunLedger ledger, ILogger<DedupShardConsumer> logger)
    : IConsumer<DedupShardCreated>
{
    public async Task Consume(ConsumeContext<DedupShardCreated> context)
    {
        var shard = context.Message.Shard;
        if (ledger.IsProcessed(CorpusTokenizer.Stage, shard.ShardId)) return;
        if (corpus.TokenizerOf(shard.RunId) is not { } t)
        {
            logger.LogDebug("tokenizer: no vocabulary for run {Run} yet; shard {Shard} waits", shard.RunId, shard.ShardId);
            return;
        }
        var tokenizer = TextTokenizer.Load(await store.FetchFolderAsync(t.Uri, context.CancellationToken));
        await TrainTokenizerConsumer.TokenizeAsync(corpus, ledger, tokenizer, t.Uri, shard, context);
    }
}
