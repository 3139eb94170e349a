using System.Text.RegularExpressions;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Cli.Tests;

/// <summary>The run's graph is declared once (PipelineGraph), drawn from that declaration, and driven by a coordinator that knows no stage.</summary>
public sealed class PipelineGraphTests
{
    private static string Root() => ComposeFileTests.Repository();

    [Fact]
    public void Docs_show_the_graph_as_declared()
    {
        var doc = File.ReadAllText(Path.Combine(Root(), "docs", "architecture.md"));
        var drawn = Regex.Match(doc, "<!-- graph:begin -->\n(.*?)<!-- graph:end -->", RegexOptions.Singleline);
        Assert.True(drawn.Success, "docs/architecture.md has no graph section");
        Assert.Equal(PipelineGraph.Describe(), drawn.Groups[1].Value);
    }

    [Fact]
    public void Every_node_waits_only_for_nodes_declared_before_it()
    {
        var request = new RunRequest("r", [], 1, 256, new TrainingConfig(), EvalTasks: ["t.yaml"]);
        var seen = new HashSet<string>();
        foreach (var node in PipelineGraph.For(request))
        {
            Assert.All(node.After.Concat(node.Input is { } input ? [input] : []), a => Assert.Contains(a, seen));
            Assert.True(seen.Add(node.Name), $"node {node.Name} is declared twice");
        }
        // The contamination stage is a barrier between dedup and tokenizer training, only when the run has tasks.
        var graph = PipelineGraph.For(request);
        var contamination = graph.Single(n => n.Name == "contamination");
        Assert.Equal("barrier", contamination.Kind);
        Assert.True(contamination.When(request));
        Assert.False(contamination.When(request with { EvalTasks = [] }));
        Assert.Contains("contamination", graph.Single(n => n.Name == "tokenizer-train").After);
    }

    [Fact]
    public void The_coordinator_names_no_stage()
    {
        // Everything a stage needs is declared in the graph; the coordinator only walks it.
        var source = File.ReadAllText(Path.Combine(Root(), "src", "Cli", "RunCoordinator.cs"));
        var coordinator = source[source.IndexOf("public sealed class RunCoordinator", StringComparison.Ordinal)..source.IndexOf("public static class RunSettings", StringComparison.Ordinal)];
        foreach (var name in new[] { "Crawl", "Clean", "Dedup", "Tokeniz", "StartTraining", "Evaluat", "Alignment", "Contamination", "Checkpoint", "StageNames", "LedgerKeys", "JobKinds" })
            Assert.DoesNotContain(name, coordinator, StringComparison.Ordinal);
    }

    [Fact]
    public void A_service_is_found_by_its_own_name_or_by_a_stage_it_runs()
    {
        Assert.Equal("cleaner", Assert.Single(Stages.ForService("clean")).Name);
        Assert.Equal("tokenizer", Assert.Single(Stages.ForService("tokenize")).Name);
        Assert.Equal("evaluator", Assert.Single(Stages.ForService("contamination")).Name);
        Assert.Equal(["trainer", "alignment"], Stages.ForService("train").Select(m => m.Name));
        Assert.Equal("crawler", Assert.Single(Stages.ForService("crawler")).Name);
        Assert.Contains("unknown stage 'cleaning'", Assert.Throws<ArgumentException>(() => Stages.ForService("cleaning")).Message);
    }
}
