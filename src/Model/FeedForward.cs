using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Model;

/// <summary>The MLP of a block: SwiGLU (Shazeer 2020) or GELU.</summary>
public sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    private readonly Linear up;
    private readonly Linear? gate;
    private readonly Linear down;

    public FeedForward(string name, GptConfig config) : base(name)
    {
        up = nn.Linear(config.Width, config.MlpHidden, hasBias: false);
        gate = config.Mlp == "swiglu" ? nn.Linear(config.Width, config.MlpHidden, hasBias: false) : null;
        down = nn.Linear(config.MlpHidden, config.Width, hasBias: false);
        RegisterComponents();
    }

    public Linear Down => down;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var hidden = gate is null ? nn.functional.gelu(up.forward(x)) : nn.functional.silu(gate.forward(x)) * up.forward(x);
        return down.forward(hidden).MoveToOuterDisposeScope();
    }
}
