using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Model;

/// <summary>
/// The optimizer update every training loop shares (pretraining, SFT, DPO), called after the backward pass:
/// gradients clipped by global norm, and a step whose loss or gradient norm is not finite skipped rather than written
/// into the weights. Five skipped in a row mean the run diverged: an error, with the last good checkpoint kept.
/// </summary>
/// <param name="gradClip">The global-norm limit; 0 or less measures the norm without clipping.</param>
/// <param name="job">How errors name the run ("training sample-gpt").</param>
public sealed class GuardedUpdate(IReadOnlyList<Parameter> trainable, AdamW optimizer, double gradClip, string job)
{
    public const int MaxSkippedInARow = 5;

    private int _inARow;

    /// <summary>Steps skipped so far.</summary>
    public int Skipped { get; private set; }

    /// <summary>The gradient norm of the last update (NaN when its loss was not finite).</summary>
    public double GradNorm { get; private set; }

    /// <summary>Clips and applies the gradients of a step whose loss was <paramref name="lossValue"/>; false when skipped.</summary>
    public bool Apply(double lossValue, long step)
    {
        // An infinite limit measures the norm and leaves the gradients as they are (clip_grad_norm_ clamps its factor to 1).
        GradNorm = double.IsFinite(lossValue) ? nn.utils.clip_grad_norm_(trainable, gradClip > 0 ? gradClip : double.PositiveInfinity) : double.NaN;
        if (double.IsFinite(GradNorm))
        {
            optimizer.step();
            _inARow = 0;
            return true;
        }
        optimizer.zero_grad();
        Skipped++;
        if (++_inARow >= MaxSkippedInARow)
            throw new InvalidOperationException($"{job} diverged: non-finite loss or gradient five steps in a row (at step {step})");
        return false;
    }
}
