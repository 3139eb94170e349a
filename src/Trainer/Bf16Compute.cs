using Pipeline.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Trainer;

/// <summary>
/// bf16 mixed precision with fp32 master weights, by explicit casts (TorchSharp 0.107 has no autocast): a bf16 copy
/// of the model runs forward and backward; its gradients are cast into the fp32 master parameters, which the
/// optimizer (with fp32 state) updates; the updated weights are cast back before the next step. bf16 has fp32's
/// exponent range, so no loss scaling is needed; the loss and the RMSNorm statistics are computed in fp32.
/// </summary>
public sealed class Bf16Compute
{
    private readonly Gpt _master;
    private readonly List<(TorchSharp.Modules.Parameter Master, TorchSharp.Modules.Parameter Compute)> _pairs;

    public Bf16Compute(Gpt master, Device device)
    {
        _master = master;
        Model = new Gpt(master.Config, device) { CheckpointActivations = master.CheckpointActivations };
        Model.to(ScalarType.BFloat16);
        _pairs = master.parameters().Zip(Model.parameters()).ToList();
    }

    /// <summary>The bf16 model that runs forward and backward.</summary>
    public Gpt Model { get; }

    /// <summary>Casts the fp32 master weights into the bf16 model (before each step).</summary>
    public void LoadMaster()
    {
        using var _ = no_grad();
        foreach (var (master, compute) in _pairs) compute.copy_(master);
        Model.train(_master.training);
    }

    /// <summary>Casts the bf16 gradients into the master parameters (after the backward passes) and clears them.</summary>
    public void GradientsToMaster()
    {
        foreach (var (master, compute) in _pairs)
        {
            if (compute.grad is not { } grad) continue;
            master.grad = grad.to(ScalarType.Float32).detach();
            compute.grad = null;
        }
    }
}
