using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Model;

/// <summary>
/// Activation checkpointing for one transformer block, hand-written because TorchSharp 0.107 has no
/// torch.utils.checkpoint: the forward pass runs the block without recording a graph and keeps only its input; the
/// backward pass runs the block again with the graph on and back-propagates through it (re-entrant, as PyTorch's
/// original checkpoint does), accumulating the parameters' gradients and returning the input's. Memory per block drops
/// from every intermediate activation to one (B, T, width) tensor, for one more forward pass. The block must be
/// deterministic (the model has no dropout), so the recomputation equals the original.
/// </summary>
public sealed class ActivationCheckpoint : autograd.SingleTensorFunction<ActivationCheckpoint>
{
    public override string Name => "ActivationCheckpoint";

    /// <summary>block(x) with its intermediate activations recomputed during the backward pass.</summary>
    public static Tensor Apply(Tensor x, Func<Tensor, Tensor> block) => apply(x, block);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        ctx.save_for_backward([x]);
        ctx.save_data("block", vars[1]);
        using var _ = no_grad();
        return ((Func<Tensor, Tensor>)vars[1])(x);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var block = (Func<Tensor, Tensor>)ctx.get_data("block");
        using var _ = enable_grad();
        var input = ctx.get_saved_variables()[0].detach().requires_grad_(true);
        var output = block(input);
        autograd.backward([output], [gradOutput]);
        return [input.grad!, null!]; // one gradient per argument; the block delegate has none
    }
}
