using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Model;

/// <summary>The MLP of a block: SwiGLU (Shazeer 2020) or GELU.</summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    private readonly AdaptableLinear up;
    private readonly AdaptableLinear? gate;
    private readonly AdaptableLinear down;

    public FeedForward(string name, GptConfig config) : base(name)
    {
        up = new AdaptableLinear("up", config.Width, config.MlpHidden);
        gate = config.Mlp == "swiglu" ? new AdaptableLinear("gate", config.Width, config.MlpHidden) : null;
        down = new AdaptableLinear("down", config.MlpHidden, config.Width);
        RegisterComponents();
    }

    public AdaptableLinear Down => down;
    public IEnumerable<AdaptableLinear> Layers => gate is null ? [up, down] : [up, gate, down];

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var hidden = gate is null ? nn.functional.gelu(up.forward(x)) : nn.functional.silu(gate.forward(x)) * up.forward(x);
        return down.forward(hidden).MoveToOuterDisposeScope();
    }
}
