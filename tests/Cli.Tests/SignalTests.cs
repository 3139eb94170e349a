using System.Diagnostics;
using Pipeline.Contracts.Rows;
using Pipeline.Contracts.V1;
using Pipeline.Storage;
using Pipeline.Model;

namespace Pipeline.Cli.Tests;

/// <summary>
/// SIGINT/SIGTERM sent to a real child process (as Ctrl+C or `docker compose stop` would): the command stops within
/// 30 s, says it was interrupted (exit 130), and training keeps the step it had reached in a checkpoint.
/// </summary>
[Collection("end-to-end")]
public sealed class SignalTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("signal-").FullName;

    private static Process Start(params string[] args) => PipelineProcess.Start(args, []);

    private static async Task SignalAsync(Process process, string signal)
    {
        using var kill = Process.Start("kill", $"-{signal} {process.Id}")!;
        await kill.WaitForExitAsync();
    }

    private static async Task WaitUntilAsync(Process process, Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (!condition())
        {
            Assert.False(process.HasExited, $"the process exited before {what}");
            Assert.True(DateTime.UtcNow < deadline, $"{what} did not happen in time");
            await Task.Delay(100);
        }
    }

    private static async Task<TimeSpan> StoppedWithinAsync(Process process, TimeSpan bound)
    {
        var watch = Stopwatch.StartNew();
        using var timeout = new CancellationTokenSource(bound);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"the process did not stop within {bound.TotalSeconds} s of the signal");
        }
        return watch.Elapsed;
    }

    private async Task<string> ManifestAsync()
    {
        var store = new ShardStore(Path.Combine(_root, "data"));
        var random = new Random(1);
        var rows = Enumerable.Range(0, 40).Select(i =>
        {
            var ids = Enumerable.Range(0, 400).Select(_ => random.Next(64)).ToArray();
            return new TokenRow { DocId = $"d{i}", Split = i % 10 == 0 ? "validation" : "train", Count = ids.Length, Tokens = TokenRow.Pack(ids, false) };
        }).ToList();
        var shard = await store.WriteParquetAsync("tokens/tokens-1.parquet", rows, new ShardDescriptor("tok1", "tokenize", "", [], "t"));
        await new TokenManifest("toy", "tokenizers/t", 64, "uint16", [new TokenShardEntry(shard.ShardId, shard.Uri, shard.Sha256, 36 * 400, 4 * 400)])
            .CommitAsync(store, "tokens/manifest.json");
        var config = Path.Combine(_root, "train.json");
        File.WriteAllText(config, $$"""
            { "DataRoot": "{{Path.Combine(_root, "data")}}", "Manifest": "tokens/manifest.json",
              "Training": { "RunName": "long", "Model": { "Layers": 1, "Heads": 2, "Width": 16, "Context": 16 }, "BatchSize": 4,
                            "MaxSteps": 10000000, "EvalEvery": 1000000, "CheckpointEvery": 1000000, "LogEvery": 10, "Threads": 1, "Device": "cpu" } }
            """);
        return config;
    }

    [Theory(Timeout = 120_000)]
    [InlineData("INT")]
    [InlineData("TERM")]
    public async Task Train_stops_on_a_signal_with_a_checkpoint_of_the_current_step(string signal)
    {
        // Regression: `pipeline train` died on SIGINT/SIGTERM without the checkpoint the code meant to write.
        var config = await ManifestAsync();
        var outDir = Path.Combine(_root, "out");
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var process = PipelineProcess.Start(["train", "--config", config, "--out", outDir], [], null, output.Enqueue);
        var ledgerless = Path.Combine(outDir, "checkpoints", "long");
        // Training is under way once it has logged step 20 (a state, not a fixed wait: a loaded machine starts slowly).
        await WaitUntilAsync(process, () => output.Any(l => l.Contains(" step 20/", StringComparison.Ordinal)), "training past step 20");
        await SignalAsync(process, signal);
        await StoppedWithinAsync(process, TimeSpan.FromSeconds(30));
        Assert.Equal(130, process.ExitCode);
        var checkpoint = Assert.Single(Checkpoints.List(ledgerless));
        Assert.True(Checkpoints.ReadInfo(checkpoint).Step > 0); // not a cadence step: the cadence is 1,000,000
    }

    [Fact(Timeout = 300_000)]
    public async Task Run_stops_on_SIGTERM_and_training_keeps_its_step()
    {
        // Regression: `pipeline run` ignored SIGTERM for minutes and needed kill -9.
        var outDir = Path.Combine(_root, "run");
        using var process = Start("run", "--run", "sample", "--out", outDir, "--max-pages", "300", "--vocab", "400", "--steps", "1000000", "--eval-tasks", "none", "--quiet");
        var runFolder = Path.Combine(outDir, "checkpoints", "sample-gpt");
        // Wait for the first checkpoint of the cadence (step 100), then for training to log a step past it.
        await WaitUntilAsync(process, () => Checkpoints.List(runFolder).Count > 0, "the first checkpoint");
        var before = Checkpoints.ReadInfo(Checkpoints.List(runFolder)[^1]).Step;
        var ledger = new Runtime.Ledger(Path.Combine(outDir, "ledger.db"));
        await WaitUntilAsync(process, () => ledger.Evaluations.Metrics("sample-gpt", "train").Any(m => m.Step > before), $"a training step past {before}");
        await SignalAsync(process, "TERM");
        await StoppedWithinAsync(process, TimeSpan.FromSeconds(30));
        Assert.Equal(130, process.ExitCode);
        var last = Checkpoints.ReadInfo(Checkpoints.List(runFolder)[^1]).Step;
        Assert.True(last > before, $"the last checkpoint is step {last}, as before the signal: the step training had reached was not saved");
    }

    public void Dispose() => Directory.Delete(_root, true);
}
