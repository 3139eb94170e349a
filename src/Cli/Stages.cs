using Pipeline.Alignment;
using Pipeline.Cleaner;
using Pipeline.Crawler;
using Pipeline.Dedup;
using Pipeline.Evaluator;
using Pipeline.Hosting;
using Pipeline.Tokenizer;
using Pipeline.Model;
using Pipeline.Trainer;

namespace Pipeline.Cli;

/// <summary>Every service of the pipeline, by name.</summary>
public static class Stages
{
    public static IReadOnlyList<IStageModule> All { get; } =
        [new CrawlerModule(), new CleanerModule(), new DedupModule(), new TokenizerModule(), new TrainerModule(), new AlignmentModule(), new EvaluatorModule()];

    /// <summary>The modules one service hosts: the trainer service also runs the alignment jobs.</summary>
    /// <param name="name">A service, or a node of the run's graph (`clean`, `tokenize`, `train`): the service that does it.</param>
    public static IReadOnlyList<IStageModule> ForService(string name)
    {
        // One vocabulary: a stage's name (as the ledger, shards and the graph name it) finds the service that runs it.
        var node = PipelineGraph.Declared().FirstOrDefault(n => string.Equals(n.Name, name, StringComparison.OrdinalIgnoreCase));
        if (node is not null) name = node.Service;
        var module = All.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"unknown stage '{name}'; services are: {string.Join(", ", All.Select(m => m.Name))}, " +
                $"and the graph's stages (`pipeline graph`): {string.Join(", ", PipelineGraph.Declared().Select(n => n.Name))}");
        return module is TrainerModule ? [module, All.OfType<AlignmentModule>().Single()] : [module];
    }
}
