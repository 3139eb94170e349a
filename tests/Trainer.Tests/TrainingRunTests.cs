using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Model;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;
using TorchSharp;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Trainer.Tests;

public sealed class TrainingRunTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("train-").FullName;

    /// <summary>A learnable toy language: each sequence counts up by a random stride (mod 64).</summary>
    private static TokenData CountingData()
    {
        var random = new Random(3);
        var tokens = new List<int>();
        while (tokens.Count < 20_000)
        {
            var stride = random.Next(1, 4);
            var start = random.Next(64);
            for (var i = 0; i < 24; i++) tokens.Add((start + i * stride) % 64);
        }
        var all = tokens.ToArray();
        return TokenData.FromTokens(all[..18_000], all[18_000..], "toy-tokenizer");
    }

    private static TrainingConfig Config(int steps) => new()
    {
        RunName = "toy",
        Model = new GptConfig { VocabSize = 64, Layers = 2, Heads = 2, Width = 32, Context = 32 },
        BatchSize = 8,
        MaxSteps = steps,
        WarmupSteps = 5,
        LearningRate = 3e-3,
        EvalEvery = 10,
        CheckpointEvery = 10,
        LogEvery = 1,
        Threads = 2,
        Device = "cpu",
    };

    private async Task<List<StepLog>> Train(TrainingConfig config, string folder, int? cancelAfter = null, TokenData? data = null)
    {
        var logs = new List<StepLog>();
        using var cancel = new CancellationTokenSource();
        var run = new TrainingRun(config, data ?? CountingData(), folder, NullLogger.Instance)
        {
            OnStep = log =>
            {
                logs.Add(log);
                if (log.Step == cancelAfter) cancel.Cancel();
                return Task.CompletedTask;
            },
        };
        await run.RunAsync(cancel.Token);
        return logs;
    }

    [Fact]
    public async Task Loss_falls_on_a_learnable_sequence()
    {
        var logs = await Train(Config(60), Path.Combine(_root, "a"));
        Assert.Equal(60, logs[^1].Step);
        Assert.True(logs[0].Loss > 3.5, $"first loss {logs[0].Loss}"); // about ln 64 = 4.16 at random init
        Assert.True(logs[^1].Loss < logs[0].Loss - 1.5, $"loss went from {logs[0].Loss} to {logs[^1].Loss}");
        Assert.NotNull(logs[^1].ValidationLoss);
        Assert.All(logs, l => Assert.True(l.TokensPerSecond > 0 && double.IsFinite(l.GradNorm)));
    }

    [Fact]
    public async Task A_resumed_run_follows_the_same_loss_curve()
    {
        var straight = await Train(Config(20), Path.Combine(_root, "straight"));
        var folder = Path.Combine(_root, "resumed");
        var before = await Train(Config(20), folder, cancelAfter: 10);
        Assert.Equal(10, before[^1].Step);
        Assert.Contains(Checkpoints.List(folder), f => f.EndsWith("step-0000010"));
        var after = await Train(Config(20), folder);
        Assert.Equal(Enumerable.Range(11, 10).Select(i => (long)i), after.Select(l => l.Step));
        var expected = straight.Skip(10).Select(l => l.Loss).ToArray();
        var actual = after.Select(l => l.Loss).ToArray();
        for (var i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 4);
    }

    [Fact]
    public async Task A_corrupt_last_checkpoint_falls_back_to_the_previous_one()
    {
        var folder = Path.Combine(_root, "corrupt");
        await Train(Config(20), folder);
        var last = Checkpoints.List(folder)[^1];
        Assert.EndsWith("step-0000020", last);
        File.WriteAllBytes(Path.Combine(last, "model.bin"), [1, 2, 3]);
        // A half-written checkpoint of a killed process is ignored too.
        Directory.CreateDirectory(Path.Combine(folder, "step-0000030.tmp-999"));
        var resumed = await Train(Config(25), folder);
        Assert.Equal(11, resumed[0].Step);
        Assert.Equal(25, resumed[^1].Step);
    }

    private static Dictionary<string, string> Fingerprint(string folder) =>
        Directory.GetFiles(folder, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(folder, f),
            f => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f))));

    [Fact]
    public async Task Resuming_with_another_tokenizer_is_refused_naming_both_hashes()
    {
        // Regression: the new tokenizer's hash was written onto checkpoints holding the old tokenizer's weights.
        var folder = Path.Combine(_root, "tokenizer");
        await Train(Config(10), folder);
        var before = Fingerprint(folder);
        var all = CountingData();
        var other = TokenData.FromTokens(all.Train, all.Validation, "other-tokenizer");
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => Train(Config(20), folder, data: other));
        Assert.Contains("toy-tokenizer", e.Message);
        Assert.Contains("other-tokenizer", e.Message);
        Assert.Equal(before, Fingerprint(folder));
    }

    [Fact]
    public async Task Resuming_with_another_model_shape_is_refused_and_overwrites_nothing()
    {
        // Regression: the old checkpoints were taken for corrupt, training restarted at step 0 and overwrote them.
        var folder = Path.Combine(_root, "shape");
        await Train(Config(10), folder);
        var before = Fingerprint(folder);
        var wider = Config(20) with { Model = Config(20).Model with { Width = 64, Heads = 4 } };
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => Train(wider, folder));
        Assert.Contains("Model.Heads (2 in the checkpoint, 4 now)", e.Message);
        Assert.Contains("Model.Width (32 in the checkpoint, 64 now)", e.Message);
        Assert.Equal(before, Fingerprint(folder));
    }

    [Fact]
    public async Task When_no_checkpoint_loads_training_stops_instead_of_starting_over()
    {
        var folder = Path.Combine(_root, "unreadable");
        await Train(Config(20), folder);
        foreach (var checkpoint in Checkpoints.List(folder)) File.WriteAllBytes(Path.Combine(checkpoint, "model.bin"), [1, 2, 3]);
        var before = Fingerprint(folder);
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => Train(Config(30), folder));
        Assert.Contains("none of the 2 checkpoints", e.Message);
        Assert.Equal(before, Fingerprint(folder));
    }

    [Theory]
    [InlineData("EvalEvery")]
    [InlineData("CheckpointEvery")]
    [InlineData("LogEvery")]
    [InlineData("BatchSize")]
    [InlineData("Heads")]
    public async Task Nonsense_settings_are_errors_naming_the_key(string key)
    {
        var config = key switch
        {
            "EvalEvery" => Config(5) with { EvalEvery = 0 },
            "CheckpointEvery" => Config(5) with { CheckpointEvery = 0 },
            "LogEvery" => Config(5) with { LogEvery = 0 },
            "BatchSize" => Config(5) with { BatchSize = -8 },
            _ => Config(5) with { Model = Config(5).Model with { Heads = 0 } },
        };
        var e = await Assert.ThrowsAsync<ArgumentException>(() => Train(config, Path.Combine(_root, "bad-" + key)));
        Assert.Contains(key, e.Message);
        Assert.False(Directory.Exists(Path.Combine(_root, "bad-" + key)));
    }

    [Fact]
    public async Task A_resume_continues_with_the_checkpointed_learning_rate_scale()
    {
        // Regression: the factor a skipped non-finite step halves the learning rate by was lost on resume.
        var folder = Path.Combine(_root, "scale");
        await Train(Config(10), folder);
        var last = Checkpoints.List(folder)[^1];
        Assert.Equal(1.0, Checkpoints.ReadInfo(last).LearningRateScale);
        var path = Path.Combine(last, "checkpoint.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!;
        json["LearningRateScale"] = 0.25;
        File.WriteAllText(path, json.ToJsonString());
        var logs = await Train(Config(12), folder);
        Assert.Equal(11, logs[0].Step);
        Assert.Equal(Config(12).LearningRateAt(10) * 0.25, logs[0].LearningRate, 12);
        Assert.Equal(0.25, Checkpoints.ReadInfo(Checkpoints.List(folder)[^1]).LearningRateScale);
    }

    [Fact]
    public async Task A_missing_optimizer_state_is_an_error_unless_reset_is_asked_for()
    {
        // Regression: a missing optimizer.bin was skipped silently, restarting Adam's moments unannounced.
        var folder = Path.Combine(_root, "optimizer");
        await Train(Config(10), folder);
        File.Delete(Path.Combine(Checkpoints.List(folder)[^1], "optimizer.bin"));
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => Train(Config(12), folder));
        Assert.Contains("--reset-optimizer", e.Message);
        var logs = await Train(Config(12) with { ResetOptimizer = true }, folder);
        Assert.Equal(11, logs[0].Step);
    }

    [Fact]
    public async Task Mfu_counts_attention_as_PaLM_does_and_is_reported_only_with_a_known_peak()
    {
        var model = Config(1).Model;
        Assert.Equal(6.0 * model.Parameters() + 12.0 * model.Layers * model.Context * model.Width, model.FlopsPerToken());
        var cpu = await Train(Config(2), Path.Combine(_root, "mfu-cpu"));
        Assert.True(double.IsNaN(cpu[0].Mfu)); // no peak known for a CPU: tokens/s only
        var known = await Train(Config(2) with { Gpu = "a100" }, Path.Combine(_root, "mfu-a100"));
        Assert.Equal(known[0].TokensPerSecond * model.FlopsPerToken() / 312e12, known[0].Mfu, 12);
        await Assert.ThrowsAsync<ArgumentException>(() => Train(Config(2) with { Gpu = "toaster" }, Path.Combine(_root, "mfu-bad")));
    }

    [Fact]
    public async Task Activation_checkpointing_gives_the_same_loss_curve()
    {
        var plain = await Train(Config(12), Path.Combine(_root, "plain"));
        var recomputed = await Train(Config(12) with { ActivationCheckpointing = true }, Path.Combine(_root, "recomputed"));
        Assert.Equal(plain.Select(l => l.Step), recomputed.Select(l => l.Step));
        for (var i = 0; i < plain.Count; i++)
        {
            Assert.Equal(plain[i].Loss, recomputed[i].Loss, 4);
            Assert.Equal(plain[i].GradNorm, recomputed[i].GradNorm, 3);
        }
    }

    [Fact]
    public async Task Bf16_compute_with_fp32_master_weights_tracks_fp32_training()
    {
        var fp32 = await Train(Config(40), Path.Combine(_root, "fp32"));
        var folder = Path.Combine(_root, "bf16");
        var bf16 = await Train(Config(40) with { Precision = Precision.Bf16 }, folder);
        Assert.NotEqual(fp32[0].Loss, bf16[0].Loss); // the forward pass really ran in bf16
        Assert.True(bf16[^1].Loss < bf16[0].Loss - 1.0, $"bf16 loss went from {bf16[0].Loss} to {bf16[^1].Loss}");
        Assert.True(Math.Abs(bf16[^1].Loss - fp32[^1].Loss) < 0.2, $"bf16 {bf16[^1].Loss} vs fp32 {fp32[^1].Loss}");
        // The checkpoint holds the fp32 master weights, and resuming continues in bf16.
        var (model, _) = Checkpoints.Load(Checkpoints.List(folder)[^1], torch.CPU);
        Assert.All(model.parameters(), p => Assert.Equal(torch.ScalarType.Float32, p.dtype));
        var more = await Train(Config(45) with { Precision = Precision.Bf16 }, folder);
        Assert.Equal(41, more[0].Step);
    }

    [Theory]
    [InlineData(Precision.Fp32, false)]
    [InlineData(Precision.Fp32, true)]
    [InlineData(Precision.Bf16, false)]
    public async Task Live_tensor_count_does_not_grow_across_steps(Precision precision, bool checkpointing)
    {
        var live = new List<long>();
        var config = Config(30) with { EvalEvery = 1000, CheckpointEvery = 1000, Precision = precision, ActivationCheckpointing = checkpointing };
        var run = new TrainingRun(config, CountingData(), Path.Combine(_root, "scope"), NullLogger.Instance)
        {
            OnStep = _ =>
            {
                live.Add(DisposeScopeManager.Statistics.ThreadTotalLiveCount);
                return Task.CompletedTask;
            },
        };
        await run.RunAsync(default);
        Assert.Equal(30, live.Count);
        // After the first steps (optimizer state is created lazily) the count is flat.
        Assert.All(live.Skip(3), n => Assert.Equal(live[3], n));
    }

    [Fact]
    public async Task A_run_that_follows_the_corpus_reloads_it_at_every_evaluation()
    {
        var reloads = 0;
        var data = CountingData();
        var grown = TokenData.FromTokens([.. data.Train, .. data.Train], data.Validation, data.TokenizerHash);
        Task<TokenData> Reload()
        {
            reloads++;
            return Task.FromResult(grown);
        }
        var run = new TrainingRun(Config(30) with { FollowCorpus = true }, data, Path.Combine(_root, "follow"), NullLogger.Instance) { Reload = Reload };
        await run.RunAsync(default);
        Assert.Equal(3, reloads); // evaluations at steps 10, 20 and 30
        var still = new TrainingRun(Config(30), data, Path.Combine(_root, "still"), NullLogger.Instance) { Reload = Reload };
        await still.RunAsync(default);
        Assert.Equal(3, reloads); // not configured to follow: never reloads
    }

    [Fact]
    public async Task A_manifest_of_another_tokenizer_is_refused()
    {
        var store = new ShardStore(_root);
        await new TokenManifest("abc", "tokenizers/x", 64, "uint16", []).CommitAsync(store, "manifest.json");
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => TokenData.LoadAsync(store, "manifest.json", "def", 32));
        Assert.Contains("refusing to mix tokenizers", error.Message);
        var tooSmall = await Assert.ThrowsAsync<InvalidOperationException>(() => TokenData.LoadAsync(store, "manifest.json", "abc", 32));
        Assert.Contains("training tokens", tooSmall.Message);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
