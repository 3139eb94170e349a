using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Pipeline.Contracts.V1;
using Pipeline.Runtime;

namespace Pipeline.Hosting.Tests;

public sealed class HostingTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("hosting-").FullName;

    private IConfiguration Config(params (string Key, string Value)[] pairs) => new ConfigurationBuilder()
        .AddInMemoryCollection(pairs.Select(p => new KeyValuePair<string, string?>(p.Key, p.Value))
            .Append(new("Pipeline:DataRoot", _root)))
        .Build();

    [Theory]
    [InlineData("InMemory")]
    [InlineData("RabbitMq")]
    public void Usage_telemetry_is_off_for_every_bus(string transport)
    {
        // Regression: MassTransit 8 reported usage telemetry to a third-party host about five minutes after start.
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddPipeline(Config(("Pipeline:Transport", transport), ("Pipeline:RabbitMq:Username", "u"), ("Pipeline:RabbitMq:Password", "p")), []);
        using var provider = services.BuildServiceProvider();
        Assert.False(provider.GetRequiredService<IOptions<UsageTelemetryOptions>>().Value.Enabled);
    }

    [Theory]
    [InlineData("Pipeline:Crawlr:MaxPages", "1", "'Crawlr'")]
    [InlineData("Pipeline:Transprt", "InMemory", "'Transprt'")]
    [InlineData("Pipeline:Stages:cleaner:ConcurrentMessageLimt", "2", "'ConcurrentMessageLimt'")]
    [InlineData("Pipeline:Stages:cleaner:ConcurrentMessageLimit", "0", "Pipeline:Stages:cleaner:ConcurrentMessageLimit")]
    [InlineData("Pipeline:Transport", "Carrier-pigeon", "Pipeline:Transport")]
    [InlineData("Pipeline:Retry:Limit", "-1", "Pipeline:Retry:Limit")]
    public void Unknown_keys_and_nonsense_values_are_errors_naming_the_key(string key, string value, string named)
    {
        var services = new ServiceCollection();
        var error = Assert.Throws<ArgumentException>(() => services.AddPipeline(Config((key, value)), []));
        Assert.Contains(named, error.Message);
    }

    [Fact]
    public void Stage_sections_are_left_to_their_modules_and_valid_keys_bind()
    {
        var options = StrictConfig.BindRoot<PipelineOptions>(Config(("Pipeline:Crawler:Anything", "1"), ("Pipeline:Stages:dedup:PrefetchCount", "9")),
            PipelineOptions.Section, PipelineOptions.StageSections);
        Assert.Equal(9, options.LimitsFor("dedup").PrefetchCount);
    }

    private sealed record Sample
    {
        [System.ComponentModel.DataAnnotations.Range(1, 10)]
        public int Steps { get; init; } = 1;
        public Nested Inner { get; init; } = new();
    }

    private sealed record Nested
    {
        [System.ComponentModel.DataAnnotations.Range(1, 10)]
        public int Heads { get; init; } = 1;
    }

    [Theory]
    [InlineData("", "is empty")]
    [InlineData("{", "config.json")]
    [InlineData("{\"Steps\": \"many\"}", "Steps")]
    [InlineData("{\"Step\": 3}", "Step")]
    [InlineData("{\"Steps\": 0}", "config.json:Steps")]
    [InlineData("{\"Inner\": {\"Heads\": 0}}", "config.json:Inner:Heads")]
    [InlineData("null", "null")]
    public void Json_config_files_are_strict(string json, string named)
    {
        var error = Assert.Throws<ArgumentException>(() => StrictConfig.FromJson<Sample>(json, "config.json"));
        Assert.Contains(named, error.Message);
    }

    [Fact]
    public void Json_config_files_bind_in_any_case()
    {
        Assert.Equal(3, StrictConfig.FromJson<Sample>("{\"steps\": 3, \"inner\": {\"heads\": 2}}", "config.json").Steps);
    }

    [Fact]
    public void Ledger_records_completion_once_and_survives_reopen()
    {
        var path = Path.Combine(_root, "ledger.db");
        var ledger = new Ledger(path);
        var output = new ShardRef("out", "o.parquet", "ab", 3, 10, "clean", "c", ["in"], "run");
        Assert.False(ledger.Artifacts.IsProcessed("clean", "in"));
        ledger.Artifacts.CompleteInput("clean", "in", "run", [output], new { Kept = 3 });
        var reopened = new Ledger(path);
        Assert.True(reopened.Artifacts.IsProcessed("clean", "in"));
        Assert.Single(reopened.Artifacts.Shards("run", "clean"));
    }

    public sealed class ScoreConsumer : IConsumer<EvaluationCompleted>
    {
        public static readonly TaskCompletionSource<EvaluationCompleted> Received = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Consume(ConsumeContext<EvaluationCompleted> context)
        {
            Received.TrySetResult(context.Message);
            return Task.CompletedTask;
        }
    }

    [Fact]
    public async Task Infinite_and_NaN_scores_travel_in_messages()
    {
        // Regression: the perplexity of a barely trained model overflowed to infinity, EvaluationCompleted failed to
        // serialize, and the evaluator's consumer faulted, so the checkpoint was never marked evaluated.
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddPipeline(Config(), [], bus => bus.AddConsumer<ScoreConsumer>());
        await using var provider = services.BuildServiceProvider();
        var bus = provider.GetRequiredService<IBusControl>();
        await bus.StartAsync();
        try
        {
            await bus.Publish(new EvaluationCompleted("r", 1, "c", "t", "1", new Dictionary<string, double> { ["ppl"] = double.PositiveInfinity, ["x"] = double.NaN }, null));
            var received = await ScoreConsumer.Received.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(double.PositiveInfinity, received.Metrics["ppl"]);
            Assert.True(double.IsNaN(received.Metrics["x"]));
        }
        finally
        {
            await bus.StopAsync();
        }
    }

    public void Dispose() => Directory.Delete(_root, true);
}
