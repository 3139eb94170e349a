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
    private Tensor? qweight;
    private Tensor? qscales;
    private int _bits;

    public AdaptableLinear(string name, int inFeatures, int outFeatures) : base(name)
    {
        weight = new Parameter(empty(outFeatures, inFeatures));
        using (no_grad()) nn.init.kaiming_uniform_(weight, Math.Sqrt(5));
        RegisterComponents();
    }

    public Parameter Weight => weight;
    public bool HasAdapter => lora_A is not null;
    public bool IsQuantized => qweight is not null;

    /// <summary>
    /// Replaces the weight by its quantized values and scales (<see cref="WeightQuantizer"/>), dequantized on each
    /// forward. The "weight" parameter stays registered, emptied, so a quantized checkpoint loads by the same names.
    /// </summary>
    public void Quantize(int bits, int group)
    {
        if (HasAdapter) throw new InvalidOperationException($"layer '{GetName()}' has a LoRA adapter: merge it before quantizing");
        (qweight, qscales) = WeightQuantizer.Quantize(weight, bits, group);
        _bits = bits;
        register_buffer("qweight", qweight);
        register_buffer("qscales", qscales);
        using (no_grad()) weight.set_(empty(0, device: weight.device));
        weight.requires_grad = false;
    }

    /// <summary>Adds an adapter of rank <paramref name="rank"/>; the base weight is frozen.</summary>
    public void AddAdapter(int rank, double alpha, double dropout)
    {
        if (HasAdapter) throw new InvalidOperationException($"layer '{GetName()}' already has an adapter");
        if (IsQuantized) throw new InvalidOperationException($"layer '{GetName()}' is quantized: adapters train on full-precision weights");
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
        var y = nn.functional.linear(x, IsQuantized ? WeightQuantizer.Dequantize(qweight!, qscales!, _bits, x.dtype) : weight);
        if (HasAdapter)
        {
            var h = _dropout > 0 && training ? nn.functional.dropout(x, _dropout, training) : x;
            y = y + nn.functional.linear(nn.functional.linear(h, lora_A!), lora_B!) * _scale;
        }
        return y.MoveToOuterDisposeScope();
    }
}
