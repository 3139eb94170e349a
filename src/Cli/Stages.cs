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
    public static IReadOnlyList<IStageModule> ForService(string name)
    {
        var module = All.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new ArgumentException($"unknown stage '{name}'; stages are: {string.Join(", ", All.Select(m => m.Name))}");
        return module is TrainerModule ? [module, All.OfType<AlignmentModule>().Single()] : [module];
    }
}
