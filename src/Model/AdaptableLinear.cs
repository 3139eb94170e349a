using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Model;

/// <summary>
/// A bias-free linear layer that can carry a LoRA adapter (Hu et al. 2021): y = x Wᵀ + (α/r)·dropout(x) Aᵀ Bᵀ, with B
/// initialized to zero so that adding an adapter leaves the output unchanged. Its weight is named "weight", as
/// nn.Linear's, so checkpoints load either way. Hand-written: TorchSharp has no LoRA.
/// </summary>
public sealed class AdaptableLinear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private Parameter? lora_A;
    private Parameter? lora_B;
    private double _scale;
    private double _dropout;

    public AdaptableLinear(string name, int inFeatures, int outFeatures) : base(name)
    {
        weight = new Parameter(empty(outFeatures, inFeatures));
        using (no_grad()) nn.init.kaiming_uniform_(weight, Math.Sqrt(5));
        RegisterComponents();
    }

    public Parameter Weight => weight;
    public bool HasAdapter => lora_A is not null;

    /// <summary>Adds an adapter of rank <paramref name="rank"/>; the base weight is frozen.</summary>
    public void AddAdapter(int rank, double alpha, double dropout)
    {
        if (HasAdapter) throw new InvalidOperationException($"layer '{GetName()}' already has an adapter");
        var (outFeatures, inFeatures) = ((int)weight.shape[0], (int)weight.shape[1]);
        lora_A = new Parameter(empty(rank, inFeatures, device: weight.device));
        using (no_grad()) nn.init.kaiming_uniform_(lora_A, Math.Sqrt(5));
        lora_B = new Parameter(zeros(outFeatures, rank, device: weight.device));
        register_parameter("lora_A", lora_A);
        register_parameter("lora_B", lora_B);
        _scale = alpha / rank;
        _dropout = dropout;
        weight.requires_grad = false;
    }

    /// <summary>W + (α/r)·B·A: the weight with the adapter folded in.</summary>
    public Tensor MergedWeight()
    {
        using var _ = no_grad();
        return HasAdapter ? weight + lora_B!.matmul(lora_A!) * _scale : weight.clone();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = nn.functional.linear(x, weight);
        if (HasAdapter)
        {
            var h = _dropout > 0 && training ? nn.functional.dropout(x, _dropout, training) : x;
            y = y + nn.functional.linear(nn.functional.linear(h, lora_A!), lora_B!) * _scale;
        }
        return y.MoveToOuterDisposeScope();
    }
}
