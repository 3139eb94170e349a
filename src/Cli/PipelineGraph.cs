using System.Text;
using Pipeline.Contracts;
using Pipeline.Contracts.V1;
using Pipeline.Evaluator;

namespace Pipeline.Cli;

/// <summary>
/// The chain from seeds to an evaluated, aligned model, as the coordinator drives it: each node names what it reads
/// and writes, the service that does it and what must be finished before it starts. Per-shard stages run as their
/// inputs are announced; a barrier runs once over all of its input; jobs are long runs of one service. The coordinator
/// (<see cref="RunCoordinator"/>) works out from this list and the ledger what can start, and has no stage of its own;
/// docs/architecture.md shows <see cref="Describe"/> of it (a test holds the two equal).
/// </summary>
public static class PipelineGraph
{
    public static IReadOnlyList<GraphNode> For(RunRequest request)
    {
        var tasks = new RunTasks(request);
        return
        [
            new CrawlJob { Name = StageNames.Crawl, Reads = "seeds (or WARC files)", Writes = "raw-page shards", Service = "crawler", Phase = "crawl" },
            new ShardStageNode<RawShardCreated>(s => new(s)) { Name = StageNames.Clean, Input = StageNames.Crawl, Reads = "raw-page shards", Writes = "clean-document shards", Service = "cleaner", Phase = "clean + dedup" },
            new ShardStageNode<CleanShardCreated>(s => new(s)) { Name = StageNames.Dedup, Input = StageNames.Clean, Reads = "clean-document shards, in order", Writes = "kept-document shards", Service = "dedup", Phase = "clean + dedup" },
            new BarrierNode<ContaminationStage>(tasks.ContaminationSettingsAsync) { Name = ContaminationStage.Name, Input = StageNames.Dedup, After = [StageNames.Dedup], Reads = "all kept-document shards, evaluation tasks", Writes = "contamination table, excluded document ids", Service = "evaluator", Phase = "tokenizer", When = r => r.EvalTasks is { Count: > 0 }, Only = "runs with evaluation tasks" },
            new ShardStageNode<EmbedShardRequested>(s => new(s)) { Name = Dedup.ShardEmbedder.Name, Input = StageNames.Dedup, After = [StageNames.Dedup], Reads = "kept-document shards", Writes = "embedding shards", Service = "dedup", Phase = "tokenizer", When = r => r.SemanticDedup is not null, Only = "runs with Pipeline:SemanticDedup:Enabled" },
            new BarrierNode<Dedup.SemanticDedupStage>((run, _) => Task.FromResult<object>(run.Request.SemanticDedup!)) { Name = Dedup.SemanticDedupStage.Name, Input = Dedup.ShardEmbedder.Name, After = [Dedup.ShardEmbedder.Name], Reads = "all embedding shards", Writes = "semantic duplicates and prototypes removed (ids), clusters", Service = "dedup", Phase = "tokenizer", When = r => r.SemanticDedup is not null, Only = "runs with Pipeline:SemanticDedup:Enabled" },
            new TokenizerTrainJob { Name = TokenizerTrainJob.Node, After = [StageNames.Dedup, ContaminationStage.Name, Dedup.SemanticDedupStage.Name], Reads = "all kept-document shards", Writes = "tokenizer", Service = "tokenizer", Phase = "tokenizer" },
            new ShardStageNode<DedupShardCreated>(s => new(s), resume: false) { Name = StageNames.Tokenize, Input = StageNames.Dedup, After = [TokenizerTrainJob.Node], Reads = "kept-document shards, tokenizer", Writes = "token shards, token manifest", Service = "tokenizer", Phase = "tokenizer" },
            new TrainJob { Name = TrainJob.Node, After = [StageNames.Tokenize], Reads = "token manifest", Writes = "checkpoints", Service = "trainer", Phase = "train" },
            new EvaluateJob { Name = EvaluateJob.Node, After = [TrainJob.Node], Reads = "checkpoints", Writes = "scores (every checkpoint, on arrival)", Service = "evaluator", Phase = "evaluate", Timeout = TimeSpan.FromMinutes(30) },
            new ScoreTasksJob(tasks, r => r.Training.RunName) { Name = "score", After = [EvaluateJob.Node], Reads = "checkpoints, the run's tasks", Writes = "scores", Service = "evaluator", Phase = "evaluate", Timeout = TimeSpan.FromMinutes(30) },
            new ReleaseJob { Name = ReleaseJob.Node, After = ["score"], Reads = "final checkpoint", Writes = "quantized checkpoints (scored on arrival), GGUF files", Service = "trainer", Phase = "release", When = r => r.Release is { Count: > 0 }, Only = "runs with --release", Timeout = TimeSpan.FromMinutes(30) },
            new AlignJob(r => r.Alignment, r => r.AlignedRun, r => (r.Training.RunName, r.Training.MaxSteps)) { Name = AlignJob.Node, After = ["score"], Reads = "final checkpoint, SFT or preference data", Writes = "aligned checkpoints", Service = "trainer", Phase = "align", When = r => r.Alignment is not null, Only = "runs with --align sft or dpo", Timeout = TimeSpan.FromMinutes(30) },
            new ScoreTasksJob(tasks, r => r.AlignedRun!) { Name = "score-aligned", After = [AlignJob.Node], Reads = "aligned checkpoints, the run's tasks", Writes = "scores", Service = "evaluator", Phase = "align", When = r => r.Alignment is not null, Only = "runs with --align sft or dpo", Timeout = TimeSpan.FromMinutes(30) },
            new AlignJob(r => r.RewardModel, r => r.RewardRun, r => r.PolicyBase) { Name = "reward", After = [AlignJob.Node], Reads = "the policy's last checkpoint, preference pairs", Writes = "reward model", Service = "trainer", Phase = "align", When = r => r.RewardModel is not null, Only = "runs with --align ...,reward", Timeout = TimeSpan.FromMinutes(30) },
            new AlignJob(r => r.Reinforcement, r => r.ReinforcedRun, r => r.PolicyBase) { Name = "rl", After = [AlignJob.Node, "reward"], Reads = "the policy's last checkpoint, prompts, the reward model or a verifier", Writes = "RL policy checkpoints", Service = "trainer", Phase = "align", When = r => r.Reinforcement is not null, Only = "runs with --align ...,grpo or ppo", Timeout = TimeSpan.FromMinutes(30) },
            new ScoreTasksJob(tasks, r => r.ReinforcedRun!) { Name = "score-rl", After = ["rl"], Reads = "RL policy checkpoints, the run's tasks", Writes = "scores", Service = "evaluator", Phase = "align", When = r => r.Reinforcement is not null, Only = "runs with --align ...,grpo or ppo", Timeout = TimeSpan.FromMinutes(30) },
        ];
    }

    /// <summary>The graph as a table (docs/architecture.md and `pipeline graph`).</summary>
    /// <summary>The graph's nodes, every one of them (as a run with tasks and an alignment has them).</summary>
    public static IReadOnlyList<GraphNode> Declared() => For(new RunRequest("run", [], 1, 256, new Contracts.Checkpoints.TrainingConfig()));

    public static string Describe()
    {
        var md = new StringBuilder("| node | kind | reads | starts after | writes | service | only in |\n|---|---|---|---|---|---|---|\n");
        foreach (var node in Declared())
        {
            var reads = node.Input is { } input ? $"`{input}`: {node.Reads}" : node.Reads;
            md.Append($"| `{node.Name}` | {node.Kind} | {reads} | {string.Join(", ", node.After.Select(a => $"`{a}`"))} | {node.Writes} | {node.Service} | {node.Only} |\n");
        }
        return md.ToString();
    }
}
