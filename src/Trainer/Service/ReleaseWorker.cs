using MassTransit;
using Microsoft.Extensions.Logging;
using Pipeline.Bpe;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Model;
using Pipeline.Release;
using Pipeline.Runtime;
using Pipeline.Storage;
using static TorchSharp.torch;

namespace Pipeline.Trainer;

/// <summary>
/// Applies the release rules to each new checkpoint. A quantized checkpoint is never released again (its method is
/// "quantize"), so a rule cannot feed itself; a repeated checkpoint message yields a repeated request, which the job
/// consumer skips once the job has completed.
/// </summary>
public sealed class ReleaseRuleConsumer(ReleaseOptions options, ILogger<ReleaseRuleConsumer> logger) : IConsumer<CheckpointSaved>
{
    public async Task Consume(ConsumeContext<CheckpointSaved> context)
    {
        var checkpoint = context.Message;
        if (checkpoint.Method == CheckpointQuantizer.Method) return;
        foreach (var rule in options.Rules.Where(r => r.Run == checkpoint.RunName && checkpoint.Step >= r.MinStep))
            foreach (var target in rule.Targets)
            {
                logger.LogInformation("release: rule for {Run}: {Target} of step {Step}", rule.Run, target, checkpoint.Step);
                await context.PublishBounded(new ReleaseRequested(checkpoint.Uri, target, checkpoint.RunId));
            }
    }
}

/// <summary>
/// Releases checkpoints as ledger-tracked jobs, one at a time (they compete with training for the cores): a quantized
/// checkpoint is saved, published and announced with CheckpointSaved (its lineage names the source), so the evaluator
/// scores it on arrival like any checkpoint; a GGUF file is committed under releases/&lt;run&gt;/ (whole, hashed,
/// published) and announced with ReleaseWritten. URIs are relative to the data root; the tokenizer a GGUF embeds is
/// found by the checkpoint's tokenizer hash. A job is named by checkpoint and target, so a repeated request is not
/// run again.
/// </summary>
public sealed class ReleaseWorker(ShardStore store, IBus bus, Ledger ledger, ILogger<ReleaseWorker> logger)
    : LedgerJobWorker<ReleaseRequested>(ledger, logger)
{
    private readonly SemaphoreSlim _oneAtATime = new(1);

    protected override string Kind => JobKinds.Release;

    protected override string NameOf(ReleaseRequested request) => JobName(request.CheckpointUri, request.Target);

    /// <summary>The ledger's name for the release of a checkpoint as a target.</summary>
    public static string JobName(string checkpointUri, string target) => $"{checkpointUri}:{target}";

    protected override async Task<long> RunJobAsync(ReleaseRequested request, CancellationToken ct)
    {
        var target = ReleaseTarget.Parse(request.Target);
        await _oneAtATime.WaitAsync(ct);
        try
        {
            var folder = await store.FetchFolderAsync(request.CheckpointUri, ct);
            var (model, info) = Checkpoints.Load(folder, CPU);
            using (model)
            {
                if (target.Quantization is { } quantization)
                {
                    var result = CheckpointQuantizer.Quantize(model, info, folder, quantization, store.Root);
                    await Checkpoints.PublishAsync(store, result.Folder, ct);
                    await bus.PublishBounded(await Checkpoints.SavedMessageAsync(store, request.RunId ?? "", result.Folder, ct), ct);
                    Logger.LogInformation("release: {Checkpoint} as {Target}: {Quantized} (weights {Before:F2} -> {After:F2} MiB)", request.CheckpointUri,
                        target, store.RelativeUri(result.Folder), result.BytesBefore / 1048576.0, result.BytesAfter / 1048576.0);
                }
                else
                {
                    var type = target.Gguf!.Value.Type;
                    var tokenizerFolder = await RunArtifacts.FindTokenizerFolderAsync(store, Ledger, info.TokenizerHash, ct)
                        ?? throw new ArgumentException($"no tokenizer with hash {info.TokenizerHash} for checkpoint '{request.CheckpointUri}'");
                    var tokenizer = TextTokenizer.Load(tokenizerFolder);
                    var uri = target.Output(info.RunName, info.Step);
                    var (sha, bytes) = await store.CommitFileAsync(uri, stream =>
                    {
                        GgufExport.Write(model, info, tokenizer, stream, type);
                        return Task.CompletedTask;
                    }, ct);
                    await bus.PublishBounded(new ReleaseWritten(request.RunId ?? "", request.CheckpointUri, target.Text, uri, sha, bytes), ct);
                    Logger.LogInformation("release: {Checkpoint} as {Target}: {Uri} ({MiB:F2} MiB)", request.CheckpointUri, target, uri, bytes / 1048576.0);
                }
            }
            return info.Step;
        }
        finally
        {
            _oneAtATime.Release();
        }
    }
}
