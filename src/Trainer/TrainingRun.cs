using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Pipeline.Runtime;
using Pipeline.Model;
using TorchSharp;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Trainer;

/// <summary>One step's figures, for logs, the ledger and progress events.</summary>
public sealed record StepLog(long Step, double Loss, double LearningRate, double GradNorm, double TokensPerSecond, double Mfu, double? ValidationLoss);

/// <summary>
/// The training loop, nanoGPT-style: deterministic batches, AdamW with decoupled decay, warm-up + cosine schedule,
/// gradient accumulation and clipping, periodic validation and atomic checkpoints; resumes from the last good one.
/// </summary>
public sealed class TrainingRun(TrainingConfig config, TokenData data, string runFolder, ILogger logger)
{
    private static readonly object InitGate = new();

    public Func<StepLog, Task>? OnStep { get; init; }
    public Func<string, CheckpointInfo, Task>? OnCheckpoint { get; init; }
    /// <summary>Reloads the token data (FollowCorpus: shards announced since the start join the stream).</summary>
    public Func<Task<TokenData>>? Reload { get; init; }

    public async Task<long> RunAsync(CancellationToken ct)
    {
        config = config.Resolved();
        StrictConfig.Validate(config, $"training config of {config.RunName}");
        config.Model.Validate();
        if (config.Threads > 0) set_num_threads(config.Threads);
        var device = config.Device == "cuda" || (config.Device == "" && cuda.is_available()) ? CUDA : CPU;
        // The seed is torch's one global generator: two runs starting at once in one service (an ablation's arms)
        // would otherwise interleave their draws and neither would get the weights its seed stands for.
        Gpt model;
        lock (InitGate)
        {
            manual_seed(config.Seed);
            model = new Gpt(config.Model, device) { CheckpointActivations = config.ActivationCheckpointing };
        }
        var precision = config.PrecisionOn(device);
        var (decay, noDecay) = model.ParameterGroups();
        var optimizer = optim.AdamW(
        [
            new TorchSharp.Modules.AdamW.ParamGroup(decay, new TorchSharp.Modules.AdamW.Options { weight_decay = config.WeightDecay }),
            new TorchSharp.Modules.AdamW.ParamGroup(noDecay, new TorchSharp.Modules.AdamW.Options { weight_decay = 0 }),
        ], lr: config.LearningRate, beta1: config.Beta1, beta2: config.Beta2, weight_decay: config.WeightDecay);
        var update = new GuardedUpdate(model.parameters().ToList(), optimizer, config.GradClip, $"training {config.RunName}");

        long step = 0;
        double? lastVal = null;
        var lrScale = 1.0; // halved at every skipped non-finite step; checkpointed, so a resume continues with it
        Checkpoints.RemovePartial(runFolder);
        var existing = Checkpoints.List(runFolder);
        var problems = new List<string>();
        var resumed = false;
        foreach (var folder in existing.Reverse())
        {
            try
            {
                // Refused before any weights are read: a checkpoint of another shape or tokenizer is never resumed
                // into (and so never overwritten by a run of another architecture).
                EnsureResumable(Checkpoints.ReadInfo(folder), folder);
                var (_, info) = Checkpoints.Load(folder, device, optimizer, model, config.ResetOptimizer);
                step = info.Step;
                lastVal = info.ValidationLoss;
                lrScale = info.LearningRateScale;
                resumed = true;
                logger.LogInformation("train: resumed {Run} from {Checkpoint}", config.RunName, folder);
                break;
            }
            catch (InvalidDataException e)
            {
                problems.Add(e.Message);
                logger.LogWarning("train: {Error}; trying the previous checkpoint", e.Message);
            }
        }
        // Checkpoints exist but none loads: starting from step 0 would overwrite them, and a failed load may have left
        // the model half-filled. Stop and say so.
        if (existing.Count > 0 && !resumed)
            throw new InvalidDataException($"training {config.RunName}: none of the {existing.Count} checkpoints in '{runFolder}' can be resumed " +
                $"({string.Join("; ", problems)}); move them away to train from step 0");

        // The optimizer owns the fp32 master weights; with bf16, a bf16 copy computes (created after resuming).
        var bf16 = precision == Precision.Bf16 ? new Bf16Compute(model, device) : null;
        logger.LogInformation("train: {Run} on {Device} in {Precision}{Checkpointing}", config.RunName, device.type, Pipeline.Contracts.NamedEnum.Name(precision),
            config.ActivationCheckpointing ? " with activation checkpointing" : "");
        if (data.ValidatesOnTrainingData)
            logger.LogWarning("train: {Run}: the corpus has no validation documents; validation loss is measured on the tail of the training data", config.RunName);
        var tokensPerStep = (long)config.BatchSize * config.Model.Context * config.AccumulationSteps;
        var flopsPerToken = config.Model.FlopsPerToken();
        var peak = config.ResolvedPeakFlops; // 0 = unknown device peak: MFU is not reported
        var watch = Stopwatch.StartNew();
        long tokensSinceLog = 0;
        var savedStep = step;
        var loop = new TrainingLoop(model, optimizer, update, s => config.LearningRateAt(s - 1) * lrScale)
        {
            AccumulationSteps = config.AccumulationSteps,
            BeforeMicroBatches = bf16 is null ? null : bf16.LoadMaster,
            AfterMicroBatches = bf16 is null ? null : bf16.GradientsToMaster,
        };
        (Gpt Model, string Folder)? teacher = config.Distillation is { } distillation ? LoadTeacher(distillation, device) : null;
        ICorpusObjective objective = teacher is null
            ? new NextTokenObjective(bf16?.Model ?? model, data, config, device)
            : new DistillationObjective(bf16?.Model ?? model, teacher.Value.Model, data, config, device);
        try
        {
            step = await loop.RunAsync(step, config.MaxSteps, objective, AfterStepAsync, ct);
        }
        catch (Exception e) when (e.Message.Contains("out of memory", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("bad_alloc") || e is OutOfMemoryException)
        {
            throw new InvalidOperationException(
                $"training {config.RunName} ran out of memory on {device.type} with batch {config.BatchSize} x {config.Model.Context} tokens and a " +
                $"{config.Model.Parameters():N0}-parameter model ({config.Model.Layers} layers, width {config.Model.Width}); lower BatchSize (TokensPerStep keeps the effective batch by accumulation) or the model size", e);
        }
        // Stopped (a signal, a cancel message) just after the check above: the current step is still saved.
        if (step > savedStep) await SaveAsync();
        return step;

        async Task<bool> AfterStepAsync(StepOutcome outcome)
        {
            step = outcome.Step;
            if (!outcome.Applied && config.OnNonFinite == NonFiniteAction.Stop)
            {
                var info = new CheckpointInfo(config.RunName, step - 1, (step - 1) * tokensPerStep, data.TokenizerHash, lastVal, config) { LearningRateScale = lrScale };
                var folder = Checkpoints.Save(runFolder, model, optimizer, info, config.KeepLast, config.KeepBest);
                throw new InvalidOperationException($"training {config.RunName}: non-finite loss at step {step}; stopped with checkpoint {folder} (OnNonFinite=stop)");
            }
            if (!outcome.Applied)
            {
                // The update was skipped; the learning rate is halved for the rest of the run (and kept on resume).
                lrScale *= 0.5;
                logger.LogWarning("train: non-finite loss at step {Step}; update skipped, learning rate halved", step);
            }
            tokensSinceLog += tokensPerStep;
            double? val = null;
            if (step % config.EvalEvery == 0 || step == config.MaxSteps)
            {
                if (config.FollowCorpus && Reload is not null)
                {
                    var fresh = await Reload();
                    if (fresh.Train.Length != data.Train.Length)
                        logger.LogInformation("train: corpus grew from {Old:N0} to {New:N0} training tokens", data.Train.Length, fresh.Train.Length);
                    data = fresh;
                    objective.Data = fresh;
                }
                lastVal = val = data.ValidationLoss(model, device, config.EvalBatches);
            }
            if (step % config.LogEvery == 0 || val is not null || step == 1)
            {
                var seconds = watch.Elapsed.TotalSeconds;
                var tps = tokensSinceLog / Math.Max(seconds, 1e-9);
                var log = new StepLog(step, outcome.Loss, outcome.LearningRate, outcome.GradNorm, tps, peak > 0 ? tps * flopsPerToken / peak : double.NaN, val);
                logger.LogInformation("train {Run} step {Step}/{Max} loss {Loss:F4}{Figures} lr {Lr:E2} grad {Grad:F3} {Tps:F0} tok/s{Mfu}{Val}",
                    config.RunName, step, config.MaxSteps, outcome.Loss, string.Concat(outcome.Figures.Select(f => $" {f.Key} {f.Value:F4}")),
                    outcome.LearningRate, outcome.GradNorm, tps, double.IsNaN(log.Mfu) ? "" : $" mfu {log.Mfu:P1}", val is null ? "" : $" val {val:F4}");
                if (OnStep is not null) await OnStep(log);
                watch.Restart();
                tokensSinceLog = 0;
            }
            if (step % config.CheckpointEvery == 0 || step == config.MaxSteps || ct.IsCancellationRequested)
                await SaveAsync();
            return true;
        }

        async Task SaveAsync()
        {
            var info = new CheckpointInfo(config.RunName, step, step * tokensPerStep, data.TokenizerHash, lastVal, config,
                                          teacher?.Folder, teacher is null ? null : "distill") { LearningRateScale = lrScale };
            var folder = Checkpoints.Save(runFolder, model, optimizer, info, config.KeepLast, config.KeepBest);
            savedStep = step;
            if (OnCheckpoint is not null) await OnCheckpoint(folder, info);
        }
    }

    /// <summary>
    /// The teacher of a distillation run, frozen: its folder is absolute or relative to the data root (a run folder is
    /// &lt;root&gt;/checkpoints/&lt;run&gt;); it must share the corpus's tokenizer, so its distribution is over the same ids.
    /// </summary>
    private (Gpt Model, string Folder) LoadTeacher(DistillationConfig distillation, Device device)
    {
        if (distillation.TopK > 0 && distillation.Divergence == "reverse")
            throw new ArgumentException($"training {config.RunName}: Distillation.TopK needs Divergence 'forward' (the reverse divergence needs the teacher's whole distribution)");
        var folder = Path.IsPathRooted(distillation.Teacher) ? distillation.Teacher : Path.GetFullPath(Path.Combine(runFolder, "..", "..", distillation.Teacher));
        if (!Directory.Exists(folder)) throw new ArgumentException($"training {config.RunName}: teacher checkpoint '{distillation.Teacher}' does not exist");
        var (teacher, info) = Checkpoints.Load(folder, device);
        if (info.TokenizerHash != data.TokenizerHash)
            throw new ArgumentException($"training {config.RunName}: teacher '{distillation.Teacher}' was trained with tokenizer {info.TokenizerHash}, the corpus uses {data.TokenizerHash}");
        teacher.eval();
        foreach (var p in teacher.parameters()) p.requires_grad = false;
        logger.LogInformation("train: {Run} distils {Teacher} ({TeacherParams:N0} parameters) at temperature {T}, alpha {Alpha}, {Divergence} KL{TopK}",
            config.RunName, folder, info.Config.Model.Parameters(), distillation.Temperature, distillation.Alpha, distillation.Divergence,
            distillation.TopK > 0 ? $", teacher's top {distillation.TopK}" : "");
        return (teacher, folder);
    }

    /// <summary>Throws, naming what differs, unless this run may continue from the checkpoint <paramref name="info"/>.</summary>
    private void EnsureResumable(CheckpointInfo info, string folder)
    {
        if (info.TokenizerHash != data.TokenizerHash)
            throw new InvalidOperationException($"training {config.RunName}: checkpoint '{folder}' was trained with tokenizer {info.TokenizerHash}, " +
                $"but the corpus manifest uses tokenizer {data.TokenizerHash}; train under a new run name, or use the manifest of tokenizer {info.TokenizerHash}");
        var differing = DifferingKeys(info.Config.Model, config.Model);
        if (differing.Count > 0)
            throw new InvalidOperationException($"training {config.RunName}: the model config differs from checkpoint '{folder}' in " +
                $"{string.Join(", ", differing.Select(d => $"Model.{d.Key} ({d.Checkpoint} in the checkpoint, {d.Config} now)"))}; " +
                "train under a new run name, or restore those values to resume");
    }

    private static List<(string Key, string Checkpoint, string Config)> DifferingKeys(GptConfig saved, GptConfig current)
    {
        var a = System.Text.Json.JsonSerializer.SerializeToElement(saved);
        var b = System.Text.Json.JsonSerializer.SerializeToElement(current);
        return a.EnumerateObject().Select(p => (p.Name, Saved: p.Value.GetRawText(), Now: b.TryGetProperty(p.Name, out var v) ? v.GetRawText() : "none"))
            .Where(x => x.Saved != x.Now).ToList();
    }
}

/// <summary>An objective over the corpus's deterministic batches, whose corpus a run that follows it can replace.</summary>
internal interface ICorpusObjective : ITrainingObjective
{
    TokenData Data { get; set; }
}

/// <summary>Pretraining's objective: next-token cross-entropy on the corpus's deterministic batches (seed, step, micro-batch).</summary>
internal sealed class NextTokenObjective(Gpt model, TokenData data, TrainingConfig config, Device device) : ICorpusObjective
{
    /// <summary>The corpus (replaced when a run that follows the corpus reloads it).</summary>
    public TokenData Data { get; set; } = data;

    public Tensor Loss(long step, int micro)
    {
        var (x, y) = Data.Batch(Data.Train, config.Seed, step - 1, micro, config.BatchSize, config.Model.Context, device);
        return model.Loss(x, y);
    }
}

/// <summary>
/// Distillation's objective (<see cref="Distillation"/>): on the same batches as pretraining, the student's loss mixes
/// the data's cross-entropy with the divergence from the frozen teacher's softened distribution, computed on the fly.
/// </summary>
internal sealed class DistillationObjective(Gpt student, Gpt teacher, TokenData data, TrainingConfig config, Device device) : ICorpusObjective
{
    private readonly Dictionary<string, double> _figures = [];

    public TokenData Data { get; set; } = data;

    public IReadOnlyDictionary<string, double> Figures => _figures;

    public Tensor Loss(long step, int micro)
    {
        var (x, y) = Data.Batch(Data.Train, config.Seed, step - 1, micro, config.BatchSize, config.Model.Context, device);
        Tensor teacherLogits;
        using (no_grad()) teacherLogits = teacher.forward(x);
        var parts = Distillation.Loss(student.forward(x), teacherLogits, y, config.Distillation!);
        _figures["ce"] = parts.CrossEntropy.item<float>();
        _figures["kd"] = parts.Divergence.item<float>();
        return parts.Loss;
    }
}
