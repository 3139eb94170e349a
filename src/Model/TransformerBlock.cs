using TorchSharp;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Model;

/// <summary>Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)).</summary>
public sealed class TransformerBlock : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> norm1;
    private readonly CausalSelfAttention attn;
    private readonly nn.Module<Tensor, Tensor> norm2;
    private readonly FeedForward mlp;

    public TransformerBlock(string name, GptConfig config) : base(name)
    {
        norm1 = Gpt.Norm(config);
        attn = new CausalSelfAttention("attn", config);
        norm2 = Gpt.Norm(config);
        mlp = new FeedForward("mlp", config);
        RegisterComponents();
    }

    public CausalSelfAttention Attention => attn;
    public FeedForward Mlp => mlp;

    public override Tensor forward(Tensor x) => Forward(x, null, 0);

    public Tensor Forward(Tensor x, KvCache? cache, int layer, Tensor? keyMask = null, SequencePacking? packing = null)
    {
        using var scope = NewDisposeScope();
        x = x + attn.Forward(norm1.forward(x), cache, layer, keyMask, packing);
        x = x + mlp.forward(norm2.forward(x));
        return x.MoveToOuterDisposeScope();
    }
}
