using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Model;

/// <summary>
/// What one training job optimizes: the loss of one micro-batch of a step. Pretraining's next-token loss, SFT's loss
/// on assistant tokens and DPO's preference loss are objectives of the one <see cref="TrainingLoop"/>; so are the
/// coming ones (reward models, RL, distillation).
/// </summary>
public interface ITrainingObjective
{
    /// <summary>The loss of micro-batch <paramref name="micro"/> of step <paramref name="step"/> (1-based), a mean over the batch.</summary>
    Tensor Loss(long step, int micro);

    /// <summary>Figures of the last step to report beside its loss (DPO's reward margin and accuracy).</summary>
    IReadOnlyDictionary<string, double> Figures => EmptyFigures;

    private static readonly IReadOnlyDictionary<string, double> EmptyFigures = new Dictionary<string, double>();
}

/// <summary>One step as the loop took it: its loss (summed over micro-batches), learning rate, gradient norm, and whether the update was applied.</summary>
public sealed record StepOutcome(long Step, double Loss, double LearningRate, double GradNorm, bool Applied, IReadOnlyDictionary<string, double> Figures);

/// <summary>
/// The training loop, read top to bottom as nanoGPT's: for each step, the learning rate from the schedule; the
/// objective's micro-batches, their gradients accumulated; one guarded update (<see cref="GuardedUpdate"/>: clipped,
/// a non-finite step skipped); then the caller's step hook (logs, validation, checkpoints, resume state), which may
/// stop it. Pretraining, SFT and DPO differ only in objective, schedule and hook.
/// </summary>
/// <param name="schedule">The learning rate of a step (1-based).</param>
public sealed class TrainingLoop(Gpt model, AdamW optimizer, GuardedUpdate update, Func<long, double> schedule)
{
    public int AccumulationSteps { get; init; } = 1;

    /// <summary>Before the micro-batches of a step (bf16: the compute copy takes the master weights).</summary>
    public Action? BeforeMicroBatches { get; init; }

    /// <summary>After them, before the update (bf16: gradients move to the master weights).</summary>
    public Action? AfterMicroBatches { get; init; }

    /// <summary>Runs from the step after <paramref name="start"/> to <paramref name="maxSteps"/>; returns the last step taken.</summary>
    /// <param name="afterStep">Called after each step; false stops the loop.</param>
    public async Task<long> RunAsync(long start, long maxSteps, ITrainingObjective objective, Func<StepOutcome, Task<bool>> afterStep, CancellationToken ct)
    {
        if (model.Quantization is { } quantized)
            throw new InvalidOperationException($"the model is quantized ({quantized.Name}): training needs full-precision weights");
        var step = start;
        while (step < maxSteps && !ct.IsCancellationRequested)
        {
            step++;
            var lr = schedule(step);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
            double loss = 0;
            bool applied;
            using (var scope = NewDisposeScope())
            {
                model.train();
                optimizer.zero_grad();
                BeforeMicroBatches?.Invoke();
                for (var micro = 0; micro < AccumulationSteps; micro++)
                {
                    var microLoss = objective.Loss(step, micro) / AccumulationSteps;
                    var value = microLoss.item<float>();
                    // A non-finite loss has no useful gradient: the update below skips the step.
                    if (double.IsFinite(value)) microLoss.backward();
                    loss += value;
                }
                AfterMicroBatches?.Invoke();
                applied = update.Apply(loss, step);
            }
            if (!await afterStep(new StepOutcome(step, loss, lr, update.GradNorm, applied, objective.Figures))) break;
        }
        return step;
    }
}
