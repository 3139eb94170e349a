using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Pipeline.Alignment.Tests;

public sealed class AlignmentRuleTests
{
    private static IServiceProvider Services(params (string Key, string Value)[] settings)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(settings.ToDictionary(s => "Pipeline:Alignment:Rules:0:" + s.Key, s => (string?)s.Value))
            .Build();
        var services = new ServiceCollection();
        new AlignmentModule().AddServices(services, configuration);
        return services.BuildServiceProvider();
    }

    [Fact]
    public void A_rule_binds_with_its_config_and_names_its_output_run()
    {
        var options = Services(("Run", "web-gpt"), ("Data", "alignment/sft.jsonl"), ("MinStep", "1000"), ("Config:LoraRank", "8"), ("Config:Steps", "50"))
            .GetRequiredService<AlignmentOptions>();
        var rule = Assert.Single(options.Rules);
        Assert.Equal(("web-gpt", "sft", 1000L, 8, 50), (rule.Run, rule.Method, rule.MinStep, rule.Config.LoraRank, rule.Config.Steps));
        Assert.Equal("web-gpt-sft-from-2000", rule.OutputRun(2000));
    }

    [Theory]
    [InlineData("MinSteps", "10", "MinSteps")]          // misspelled: an error, not a rule that silently runs with defaults
    [InlineData("Method", "kto", "kto")]
    [InlineData("Data", "", "Data")]
    public void A_bad_rule_stops_the_service_with_an_error_naming_it(string key, string value, string named)
    {
        var settings = new Dictionary<string, string> { ["Run"] = "web-gpt", ["Data"] = "alignment/sft.jsonl" };
        settings[key] = value;
        var error = Assert.Throws<ArgumentException>(() => Services(settings.Select(kv => (kv.Key, kv.Value)).ToArray()));
        Assert.True(error.Message.Contains("Pipeline:Alignment"), error.Message);
        Assert.True(error.Message.Contains(named), error.Message);
    }
}
