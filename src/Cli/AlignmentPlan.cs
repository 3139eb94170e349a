using System.Text.Json;
using Pipeline.Alignment;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Cli;

/// <summary>
/// The alignment phase of `pipeline run` (--align), in InstructGPT's order: a fine-tune of the final checkpoint (sft or
/// dpo), then a reward model trained from that policy, then RL of the policy (grpo or ppo) against the reward model,
/// or, without one, against a verifier (char_f1 of the completion against the prompt's answer). Each part is optional;
/// the shipped samples/alignment sets are the data, copied under the data root because messages carry URIs.
/// </summary>
public sealed record AlignmentPlan(RunAlignment? Alignment, RunAlignment? RewardModel, RunAlignment? Reinforcement)
{
    public static readonly IReadOnlyList<string> Default = ["sft"];

    private static readonly string[] Tunes = ["sft", "dpo"], Reinforcements = ["grpo", "ppo"];

    /// <summary>The data files the plan's jobs read, as URIs under the data root.</summary>
    public IEnumerable<string> DataUris => new[] { Alignment, RewardModel, Reinforcement }.OfType<RunAlignment>().Select(a => a.DataUri).Distinct();

    /// <summary>Checks --align: known methods, each once, in order (sft|dpo, then reward, then grpo|ppo); "none" alone for no alignment.</summary>
    public static (string? Tune, bool Reward, string? Reinforcement) Parse(IReadOnlyList<string> methods)
    {
        if (methods is ["none"] or []) return (null, false, null);
        var order = new[] { Tunes, ["reward"], Reinforcements };
        var stage = -1;
        string? tune = null, reinforcement = null;
        var reward = false;
        foreach (var method in methods)
        {
            var at = Array.FindIndex(order, o => o.Contains(method));
            if (at < 0)
                throw new ArgumentException($"--align '{method}': not an alignment method (sft, dpo, reward, grpo, ppo, or none alone)");
            if (at <= stage)
                throw new ArgumentException($"--align {string.Join(',', methods)}: '{method}' comes too late; the order is sft or dpo, then reward, then grpo or ppo, each at most once");
            stage = at;
            if (at == 0) tune = method;
            else if (at == 1) reward = true;
            else reinforcement = method;
        }
        return (tune, reward, reinforcement);
    }

    /// <summary>The plan for a sample-sized run: small LoRA fine-tunes and a short RL job, sized by the run's steps.</summary>
    public static AlignmentPlan Build(EmbeddedRunOptions options, TrainingConfig training, string outDir)
    {
        var (tune, reward, reinforcement) = Parse(options.Align ?? Default);
        var steps = Math.Max(10, training.MaxSteps / 5);
        RunAlignment? Job(string method, string? data, string what, AlignmentConfig config)
        {
            // No data: none ("" asks for none; a default set not found outside the repository is none unless --align named it).
            if (data == "" || (data is null && options.Align is null)) return null;
            if (data is null) throw new FileNotFoundException($"--align {method}: the shipped {what} (samples/alignment) was not found; run from the repository");
            if (!File.Exists(data)) throw new FileNotFoundException($"{what} '{data}' does not exist", data);
            var uri = $"alignment/{method}{Path.GetExtension(data)}";
            Directory.CreateDirectory(Path.Combine(outDir, "alignment"));
            File.Copy(data, Path.Combine(outDir, uri), overwrite: true);
            return new RunAlignment(method, uri, JsonSerializer.Serialize(config with { Method = method }));
        }
        var pairs = SampleSite.ShippedAlignmentData("dpo-ja.jsonl");
        var alignment = tune switch
        {
            "sft" => Job("sft", options.SftData ?? SampleSite.ShippedSftData(), "SFT data", new AlignmentConfig { Steps = steps, LoraRank = 8, LearningRate = 1e-3 }),
            "dpo" => Job("dpo", pairs, "preference data", new AlignmentConfig { Steps = steps, LoraRank = 8, LearningRate = 1e-4 }),
            _ => null,
        };
        var policy = RunRequest.PolicyBaseOf(training, alignment);
        var rewardModel = reward ? Job("reward", pairs, "preference data", new AlignmentConfig { Steps = steps, LoraRank = 8, LearningRate = 1e-3 }) : null;
        // RL from the same policy: the reward model's last checkpoint (its URI known before it exists), else the
        // verifier; full fine-tuning at a small rate, a few completions per prompt, short replies.
        var rl = reinforcement is null ? null : Job(reinforcement, SampleSite.ShippedAlignmentData("rl-ja.jsonl"), "RL prompts", new AlignmentConfig
        {
            Steps = steps, BatchSize = 4, Generations = 4, MaxNewTokens = 16, LearningRate = 1e-5,
            RewardModel = rewardModel is null ? null : RunCheckpoints.Uri(rewardModel.OutputRun(policy.Run, policy.Step), rewardModel.Steps),
            Verifier = rewardModel is null ? "char_f1" : null,
        });
        return new AlignmentPlan(alignment, rewardModel, rl);
    }
}
