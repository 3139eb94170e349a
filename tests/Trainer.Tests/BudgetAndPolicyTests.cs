using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Model;
using Pipeline.Runtime;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Trainer.Tests;

public sealed class BudgetAndPolicyTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("budget-").FullName;

    [Theory]
    [InlineData(1e15)]
    [InlineData(1e18)]
    public void A_compute_budget_becomes_a_chinchilla_optimal_model_and_token_count(double flops)
    {
        var config = new TrainingConfig { ComputeBudgetFlops = flops, BatchSize = 8, Model = new GptConfig { VocabSize = 4096, Context = 256 } }.Resolved();
        var optimal = Math.Sqrt(flops / 120);
        var parameters = config.Model.Parameters();
        Assert.InRange(parameters, optimal * 0.7, optimal * 1.4);
        Assert.Equal(flops, 6.0 * parameters * config.MaxTokens, flops * 0.01);
        Assert.InRange((double)config.MaxTokens / parameters, 14, 29); // about 20 tokens per parameter
        Assert.Equal((config.MaxTokens + 8 * 256 - 1) / (8 * 256), config.MaxSteps);
        Assert.Equal(0, config.Model.Width % config.Model.Heads);
    }

    [Fact]
    public void A_token_budget_becomes_steps() =>
        Assert.Equal(49, new TrainingConfig { MaxTokens = 100_000, BatchSize = 8, Model = new GptConfig { Context = 256 } }.Resolved().MaxSteps);

    [Fact]
    public void Keep_best_keeps_the_lowest_validation_loss_besides_the_last()
    {
        var config = new TrainingConfig { Model = new GptConfig { VocabSize = 32, Layers = 1, Heads = 2, Width = 8, Context = 8 } };
        var model = new Gpt(config.Model);
        var folder = Path.Combine(_root, "run");
        double[] losses = [3.0, 2.0, 4.0, 5.0];
        for (var i = 0; i < losses.Length; i++)
            Checkpoints.Save(folder, model, null, new CheckpointInfo("run", i + 1, 0, "h", losses[i], config), keepLast: 1, keepBest: true);
        Assert.Equal(["step-0000002", "step-0000004"], Checkpoints.List(folder).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_non_finite_loss_stops_with_a_checkpoint_when_configured()
    {
        var random = new Random(1);
        var tokens = Enumerable.Range(0, 5000).Select(_ => random.Next(32)).ToArray();
        var data = TokenData.FromTokens(tokens, tokens[..500], "h");
        var config = new TrainingConfig
        {
            Model = new GptConfig { VocabSize = 32, Layers = 1, Heads = 2, Width = 8, Context = 8 },
            BatchSize = 4, MaxSteps = 50, WarmupSteps = 1, LearningRate = 1e30, MinLearningRate = 1e30, GradClip = 1e30, OnNonFinite = NonFiniteAction.Stop,
            EvalEvery = 1000, CheckpointEvery = 1000, Device = "cpu",
        };
        var folder = Path.Combine(_root, "nan");
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => new TrainingRun(config, data, folder, NullLogger.Instance).RunAsync(default));
        Assert.Contains("non-finite loss", error.Message);
        Assert.Single(Checkpoints.List(folder));

        var skipping = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            new TrainingRun(config with { OnNonFinite = NonFiniteAction.Skip }, data, Path.Combine(_root, "skip"), NullLogger.Instance).RunAsync(default));
        Assert.Contains("five steps in a row", skipping.Message);
    }

    [Fact]
    public void Modes_are_read_by_name_and_an_unknown_one_is_an_error_naming_the_choices()
    {
        // Regression: OnNonFinite was a string compared with "stop", so a misspelt "stpo" silently meant skip.
        var config = Runtime.StrictConfig.FromJson<TrainingConfig>("""{ "Precision": "bf16", "OnNonFinite": "stop" }""", "config.json");
        Assert.Equal((Precision.Bf16, NonFiniteAction.Stop), (config.Precision, config.OnNonFinite));
        Assert.Contains("\"OnNonFinite\": \"stop\"", System.Text.Json.JsonSerializer.Serialize(config, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        var error = Assert.Throws<ArgumentException>(() => Runtime.StrictConfig.FromJson<TrainingConfig>("""{ "OnNonFinite": "stpo" }""", "config.json"));
        Assert.Contains("'stpo' is not skip or stop", error.Message);
        Assert.Contains("OnNonFinite", error.Message);
        error = Assert.Throws<ArgumentException>(() => Runtime.StrictConfig.FromJson<TrainingConfig>("""{ "Precision": "fp16" }""", "config.json"));
        Assert.Contains("'fp16' is not auto, fp32 or bf16", error.Message);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
