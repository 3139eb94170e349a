using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Model;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Trainer.Tests;

/// <summary>The trainer service: started by a message, acknowledged at once, never started twice, cancellable.</summary>
public sealed class TrainingWorkerTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("worker-").FullName;

    private async Task<string> ManifestAsync()
    {
        var store = new ShardStore(_root);
        var random = new Random(1);
        var rows = Enumerable.Range(0, 40).Select(i =>
        {
            var ids = Enumerable.Range(0, 200).Select(_ => random.Next(64)).ToArray();
            return new TokenRow { DocId = $"d{i}", Split = i % 10 == 0 ? "validation" : "train", Count = ids.Length, Tokens = TokenRow.Pack(ids, false) };
        }).ToList();
        var shard = await store.WriteParquetAsync("shards/tokens/t/tokens-1.parquet", rows, new ShardDescriptor("tok1", "tokenize", "", [], "t"));
        await new TokenManifest("toy", "tokenizers/t", 64, "uint16", [new TokenShardEntry(shard.ShardId, shard.Uri, shard.Sha256, 7200, 800)])
            .CommitAsync(store, "shards/tokens/t/manifest.json");
        return "shards/tokens/t/manifest.json";
    }

    private IHost Host(bool recordCheckpoints = false)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Pipeline:DataRoot"] = _root });
        builder.Services.AddPipeline(builder.Configuration, [new TrainerModule()], recordCheckpoints ? bus => bus.AddConsumer<CheckpointRecorder>() : null);
        return builder.Build();
    }

    /// <summary>Records the checkpoints a host announces.</summary>
    public sealed class CheckpointRecorder : MassTransit.IConsumer<CheckpointSaved>
    {
        public static readonly System.Collections.Concurrent.ConcurrentQueue<CheckpointSaved> Seen = new();

        public Task Consume(MassTransit.ConsumeContext<CheckpointSaved> context)
        {
            Seen.Enqueue(context.Message);
            return Task.CompletedTask;
        }
    }

    [Fact]
    public async Task A_resumed_run_announces_again_every_checkpoint_not_yet_evaluated()
    {
        // Regression: after a kill -9 during training, checkpoints announced before it were never evaluated.
        var manifest = await ManifestAsync();
        using (var host = Host())
        {
            await host.StartAsync();
            var ledger = host.Services.GetRequiredService<Ledger>();
            Assert.Null(host.Services.GetRequiredService<TrainingWorker>().TryStart(new StartTraining("t", "again", manifest, Config(10))));
            await WaitForStateAsync(ledger, "again", "completed");
            await host.StopAsync();
        }
        var ledgerAfter = new Ledger(Path.Combine(_root, "ledger.db"));
        // As a kill -9 would leave it: the job still "running", step 5 evaluated, step 10 announced but never scored.
        var job = ledgerAfter.Jobs.Get<StartTraining>(JobKinds.Training, "again")!;
        ledgerAfter.Documents.Set(LedgerKeys.Job(JobKinds.Training, "again"), JsonSerializer.Serialize(job with { Request = job.Request with { ConfigJson = Config(15) }, State = JobState.Running }));
        ledgerAfter.Documents.Set(LedgerKeys.Evaluated("checkpoints/again/step-0000005"), "[]");

        CheckpointRecorder.Seen.Clear();
        using (var host = Host(recordCheckpoints: true))
        {
            await host.StartAsync();
            await WaitForStateAsync(host.Services.GetRequiredService<Ledger>(), "again", "completed");
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (!CheckpointRecorder.Seen.Any(c => c.Step == 15) && DateTime.UtcNow < deadline) await Task.Delay(50);
            await host.StopAsync();
        }
        Assert.Equal([10, 15], CheckpointRecorder.Seen.Select(c => c.Step).Order());
    }

    private static string Config(int steps) => JsonSerializer.Serialize(new TrainingConfig
    {
        Model = new GptConfig { VocabSize = 64, Layers = 1, Heads = 2, Width = 16, Context = 16 },
        BatchSize = 4, MaxSteps = steps, WarmupSteps = 2, EvalEvery = 5, CheckpointEvery = 5, LogEvery = 1, Threads = 1, Device = "cpu",
    });

    private static async Task<LedgerJob<StartTraining>> WaitForStateAsync(Ledger ledger, string run, params string[] states)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (ledger.Jobs.Get<StartTraining>(JobKinds.Training, run) is { } job && states.Contains(job.State.Name())) return job;
            Assert.True(DateTime.UtcNow < deadline, $"run {run} did not reach {string.Join('/', states)}");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task A_start_message_runs_once_and_a_cancel_stops_with_a_checkpoint()
    {
        var manifest = await ManifestAsync();
        using var host = Host();
        await host.StartAsync();
        var bus = host.Services.GetRequiredService<MassTransit.IBus>();
        var ledger = host.Services.GetRequiredService<Ledger>();
        var worker = host.Services.GetRequiredService<TrainingWorker>();

        await bus.Publish(new StartTraining("t", "short", manifest, Config(10)));
        await bus.Publish(new StartTraining("t", "short", manifest, Config(10))); // a redelivery
        var done = await WaitForStateAsync(ledger, "short", "completed", "failed");
        Assert.Null(done.Error);
        Assert.Equal(10, ledger.Evaluations.Metrics("short", "train").Where(m => m.Name == "loss").Max(m => m.Step));
        Assert.Equal(10, ledger.Evaluations.Metrics("short", "train").Count(m => m.Name == "loss")); // every step logged once: one run
        Assert.NotNull(worker.TryStart(new StartTraining("t", "short", manifest, Config(10)))); // completed: refused

        Assert.Null(worker.TryStart(new StartTraining("t", "long", manifest, Config(100_000))));
        Assert.Contains("already running", worker.TryStart(new StartTraining("t", "long", manifest, Config(100_000))));
        await WaitForStateAsync(ledger, "long", "running");
        // Cancelled once it has trained a step (its loss is logged), on that state rather than after a fixed wait.
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!ledger.Evaluations.Metrics("long", "train").Any(m => m.Name == "loss"))
        {
            Assert.True(DateTime.UtcNow < deadline, "run long logged no step in 2 minutes");
            await Task.Delay(50);
        }
        await bus.Publish(new CancelTraining("long"));
        var cancelled = await WaitForStateAsync(ledger, "long", "cancelled", "failed");
        Assert.Equal(JobState.Cancelled, cancelled.State);
        var last = Checkpoints.List(_root + "/checkpoints/long")[^1];
        Assert.True(Checkpoints.ReadInfo(last).Step is > 0 and < 100_000);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_bad_manifest_fails_the_run_with_the_reason()
    {
        using var host = Host();
        await host.StartAsync();
        var worker = host.Services.GetRequiredService<TrainingWorker>();
        var ledger = host.Services.GetRequiredService<Ledger>();
        Assert.Null(worker.TryStart(new StartTraining("t", "bad", "shards/tokens/none/manifest.json", Config(5))));
        var job = await WaitForStateAsync(ledger, "bad", "failed");
        Assert.Contains("does not exist", job.Error);
        await host.StopAsync();
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
