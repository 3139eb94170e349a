using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Pipeline.Model;
using Pipeline.Storage;
using Pipeline.Bpe;
using Pipeline.Runtime;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Alignment;

/// <summary>What an alignment job wrote: the full checkpoint (merged when LoRA) and, for LoRA, the adapter folder.</summary>
public sealed record AlignmentResult(string Checkpoint, string? Adapter, CheckpointInfo Info, AlignmentReport Report, IReadOnlyList<string> DataErrors);

/// <summary>
/// One SFT, DPO or reward-model job on a base checkpoint: reads the data (malformed lines reported and skipped), refuses a base
/// checkpoint of another tokenizer, trains, and writes a full checkpoint with its lineage (base checkpoint, method,
/// data hash), plus, with LoRA, the adapter alone (a small safetensors file) that `pipeline lora merge` folds back.
/// </summary>
public sealed class AlignmentJob(ILogger logger)
{
    /// <summary>A reward model's held-out accuracy and margin (<see cref="HeldOutRewards"/>), beside its checkpoint.</summary>
    public const string HeldOutFile = "reward-eval.json";

    /// <remarks>
    /// Stopped by <paramref name="ct"/> (a signal, the service stopping), the job saves its state (resume/ in the output
    /// folder), writes a checkpoint of the step it reached and throws <see cref="OperationCanceledException"/>; the
    /// same job started again continues from the saved step (<see cref="AlignmentResume"/>).
    /// </remarks>
    /// <param name="onStep">Called after every step with its loss and figures (the trainer service records them in the ledger).</param>
    public AlignmentResult Run(string baseCheckpoint, TextTokenizer tokenizer, string dataPath, AlignmentConfig config, string outputFolder, string runName,
        CancellationToken ct = default, Action<AlignmentStep>? onStep = null)
    {
        var (model, baseInfo) = Checkpoints.Load(baseCheckpoint, CPU);
        if (baseInfo.TokenizerHash != tokenizer.Hash)
            throw new InvalidDataException($"base checkpoint '{baseCheckpoint}' was trained with tokenizer {baseInfo.TokenizerHash}, not {tokenizer.Hash}; refusing to align it with another tokenizer");
        var template = new ChatTemplate(tokenizer);
        var errors = new List<string>();
        var pad = tokenizer.SpecialIds[SpecialTokens.Pad];
        var dataHash = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(dataPath)))[..16];
        var resume = new AlignmentResume(outputFolder, $"{Path.GetFullPath(baseCheckpoint)}|{dataHash}|{JsonSerializer.Serialize(config)}", config.SaveEvery);
        AlignmentReport report;
        var firstStep = true;
        void Progress(AlignmentStep s)
        {
            onStep?.Invoke(s);
            if (firstStep && s.Step > 1) logger.LogInformation("align {Method} {Run}: resumed from the state saved at step {Step}", config.Method, runName, s.Step - 1);
            firstStep = false;
            if ((config.LogEvery <= 0 || s.Step % config.LogEvery != 0) && s.Step != config.Steps) return;
            if (config.Method is "dpo" or "reward")
                logger.LogInformation("align {Method} {Run} step {Step}/{Steps} loss {Loss:F4} reward margin {Margin:F4} accuracy {Accuracy:P0}",
                    config.Method, runName, s.Step, config.Steps, s.Loss, s.Margin, s.Accuracy);
            else logger.LogInformation("align {Method} {Run} step {Step}/{Steps} loss {Loss:F4}", config.Method, runName, s.Step, config.Steps, s.Loss);
        }
        if (config.Method == "sft")
        {
            var examples = AlignmentData.ReadSft(dataPath, errors).Select(e => template.Encode(e.Messages)).ToList();
            report = AlignmentTrainer.Sft(model, examples, config, pad, Progress, ct, resume);
        }
        else if (config.Method is "dpo" or "reward")
        {
            var pairs = AlignmentData.ReadPreferences(dataPath, errors).Select(p => (template.Prompt(p.Prompt), template.Reply(p.Chosen), template.Reply(p.Rejected))).ToList();
            if (config.Method == "dpo") report = AlignmentTrainer.Dpo(model, pairs, config, pad, Progress, ct, resume);
            else
            {
                model = model.WithScoreHead();
                report = AlignmentTrainer.Reward(model, pairs, config, pad, Progress, ct, resume);
                if (report.HeldOut is { } held)
                    logger.LogInformation("align: reward model {Run}: {Pairs} held-out pairs, accuracy {Accuracy:P1}, mean margin {Margin:F3}", runName, held.Pairs, held.Accuracy, held.Margin);
            }
        }
        else if (config.Method is "grpo" or "ppo")
        {
            var records = AlignmentData.ReadPrompts(dataPath, errors);
            var prompts = records.Select(r => template.Prompt(r.Prompt)).ToList();
            var (reference, _) = Checkpoints.Load(baseCheckpoint, CPU);
            var endOfTurn = tokenizer.SpecialIds[SpecialTokens.EndOfTurn];
            var stop = new HashSet<int> { endOfTurn, tokenizer.EndOfText };
            var reward = Rewarder(config, records, tokenizer, stop);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            if (config.Method == "grpo") report = AlignmentTrainer.Grpo(model, reference, prompts, reward, config, pad, stop, Progress, ct, resume);
            else
            {
                // The value head rides on the policy's trunk while training and is dropped from the saved policy.
                model = model.WithScoreHead();
                report = AlignmentTrainer.Ppo(model, reference, prompts, reward, config, pad, stop, endOfTurn, Progress, ct, resume);
            }
            if (report.StepFigures.Count > 0)
                logger.LogInformation("align: {Method} {Run}: mean reward {First:F3} (first 10 steps) -> {Last:F3} (last 10), KL {Kl:F4}, completions {Length:F1} tokens, {Generating:P0} of the time generating",
                    config.Method, runName, report.StepFigures.Take(10).Average(f => f["reward"]), report.StepFigures.TakeLast(10).Average(f => f["reward"]), report.StepFigures[^1]["kl"],
                    report.StepFigures.Average(f => f["completion_length"]), report.StepFigures.Sum(f => f["generate_seconds"]) / Math.Max(1e-9, clock.Elapsed.TotalSeconds));
        }
        else throw new ArgumentException($"alignment method '{config.Method}' is not {string.Join(", ", AlignmentConfig.Methods)}");
        foreach (var error in errors) logger.LogWarning("align: skipped {Error}", error);
        if (report.Steps.Count > 0)
            logger.LogInformation("align: {Method} {Run}: steps {From}-{To}, loss {First:F4} -> {Last:F4}, {Examples} examples in {Rows} rows, {Truncated} truncated, {Dropped} dropped",
                config.Method, runName, report.Steps[0].Step, report.Steps[^1].Step, report.Steps[0].Loss, report.Steps[^1].Loss, report.Examples, report.Rows, report.Truncated, report.Dropped);

        var reached = report.Steps.Count == 0 ? 0 : report.Steps[^1].Step;
        // The model's own shape: a reward model's has its score head; PPO's value head is not part of the policy.
        var info = new CheckpointInfo(runName, reached, 0, tokenizer.Hash, null,
            baseInfo.Config with { RunName = runName, Model = model.Config with { ScoreHead = config.Method == "reward" } },
            BaseCheckpoint: Path.GetFullPath(baseCheckpoint), Method: config.LoraRank > 0 ? $"{config.Method}+lora" : config.Method);
        string? adapter = null;
        if (config.LoraRank > 0)
        {
            adapter = SaveAdapter(model, info, config, dataHash, Path.Combine(outputFolder, $"adapter-step-{reached:D7}"));
            model = model.Merged();
        }
        if (config.Method == "ppo") model = model.WithoutScoreHead();
        var checkpoint = Checkpoints.Save(outputFolder, model, null, info, keepLast: 3, writeMore: folder =>
        {
            File.WriteAllText(Path.Combine(folder, Checkpoints.LineageFile), JsonSerializer.Serialize(new { baseCheckpoint = info.BaseCheckpoint, method = info.Method, dataHash, config }));
            if (report.HeldOut is { } held) File.WriteAllText(Path.Combine(folder, HeldOutFile), JsonSerializer.Serialize(held));
        });
        if (ct.IsCancellationRequested)
            throw new OperationCanceledException($"alignment {runName} stopped at step {reached} of {config.Steps}; checkpoint {checkpoint}; run it again to continue", ct);
        resume.Clear();
        return new AlignmentResult(checkpoint, adapter, info, report, errors);
    }

    /// <summary>
    /// GRPO's and PPO's reward: a verifier (exact_match or char_f1 of the completion's text, up to its end-of-turn, against the
    /// prompt's answer) or a reward model (of the same tokenizer) scoring prompt + completion.
    /// </summary>
    private static RolloutReward Rewarder(AlignmentConfig config, IReadOnlyList<RlPrompt> records, TextTokenizer tokenizer, ISet<int> stop)
    {
        if ((config.Verifier is null) == (config.RewardModel is null))
            throw new ArgumentException($"{config.Method} needs exactly one reward: a reward model (RewardModel, --reward) or a verifier (Verifier, --verifier exact_match|char_f1)");
        if (config.Verifier is { } verifier)
        {
            if (records.Select((r, i) => (r, i)).FirstOrDefault(x => x.r.Answer is null) is { r: not null } missing)
                throw new InvalidDataException($"grpo with verifier {verifier}: prompt {missing.i + 1} has no answer to compare with");
            Func<string, string, double> score = verifier == "exact_match" ? Scorers.ExactMatch : Scorers.CharF1;
            return rollouts => rollouts.Select(r => (float)score(tokenizer.Decode(r.Completion.TakeWhile(t => !stop.Contains(t))), records[r.Prompt].Answer!)).ToArray();
        }
        var (rewardModel, info) = Checkpoints.Load(config.RewardModel!, CPU);
        if (rewardModel.ScoreHead is null) throw new ArgumentException($"reward model '{config.RewardModel}' is a language model, not a reward model (train one with `pipeline align reward`)");
        if (info.TokenizerHash != tokenizer.Hash)
            throw new InvalidDataException($"reward model '{config.RewardModel}' was trained with tokenizer {info.TokenizerHash}, not {tokenizer.Hash}");
        var template = new ChatTemplate(tokenizer);
        var pad = tokenizer.SpecialIds[SpecialTokens.Pad];
        var context = rewardModel.Config.Context;
        return rollouts =>
        {
            var sequences = rollouts.Select(r => template.Prompt(records[r.Prompt].Prompt).Concat(r.Completion).TakeLast(context).ToList()).ToList();
            return AlignmentTrainer.BatchedRewards(rewardModel, sequences, pad, sequences.Count);
        };
    }

    private static string SaveAdapter(Gpt model, CheckpointInfo info, AlignmentConfig config, string dataHash, string folder)
    {
        // A reward model's score head is trained whole: it travels with the adapters.
        var tensors = model.state_dict().Where(kv => kv.Key.Contains("lora_") || kv.Key.StartsWith("score.", StringComparison.Ordinal));
        // The base is named relative to the adapter folder, so the pair can be moved or copied to another host together.
        var baseRelative = Path.GetRelativePath(Path.GetFullPath(folder), info.BaseCheckpoint!);
        AtomicWrite.Folder(folder, temp =>
        {
            Safetensors.Save(tensors, Path.Combine(temp, "adapter.safetensors"), new Dictionary<string, string> { ["base"] = baseRelative, ["method"] = info.Method! });
            File.WriteAllText(Path.Combine(temp, "adapter.json"), JsonSerializer.Serialize(new AdapterInfo(baseRelative, config, info with { BaseCheckpoint = baseRelative }, dataHash)));
        });
        return folder;
    }

    /// <summary>Folds an adapter into its base checkpoint and writes the full checkpoint (`pipeline lora merge`).</summary>
    public static string Merge(string adapterFolder, string outputFolder)
    {
        var adapter = ReadAdapter(adapterFolder);
        var baseCheckpoint = adapter.BaseFolder(adapterFolder);
        var (model, _) = Checkpoints.Load(baseCheckpoint, CPU);
        model.AddLora(adapter.Config.LoraRank, adapter.Config.LoraAlpha, adapter.Config.LoraDropout, adapter.Config.LoraTargets);
        Safetensors.LoadInto(model, Path.Combine(adapterFolder, "adapter.safetensors"), strict: false);
        return Checkpoints.Save(outputFolder, model.Merged(), null, adapter.Info with { BaseCheckpoint = baseCheckpoint }, keepLast: 3);
    }

    public static AdapterInfo ReadAdapter(string adapterFolder) =>
        JsonSerializer.Deserialize<AdapterInfo>(File.ReadAllText(Path.Combine(adapterFolder, "adapter.json")))
            ?? throw new InvalidDataException($"adapter '{adapterFolder}' has no adapter.json");

    /// <param name="BaseCheckpoint">The base checkpoint folder, relative to the adapter folder (absolute in adapters written before).</param>
    public sealed record AdapterInfo(string BaseCheckpoint, AlignmentConfig Config, CheckpointInfo Info, string DataHash)
    {
        public string BaseFolder(string adapterFolder) => Path.GetFullPath(Path.Combine(adapterFolder, BaseCheckpoint));
    }
}
