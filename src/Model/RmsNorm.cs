using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Model;

/// <summary>RMSNorm (Zhang and Sennrich 2019); TorchSharp 0.107 has no module for it.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly TorchSharp.Modules.Parameter weight;
    private readonly double _eps;

    public RmsNorm(string name, long dim, double eps = 1e-5) : base(name)
    {
        weight = new TorchSharp.Modules.Parameter(ones(dim));
        _eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // The mean of squares in fp32 even when the model computes in bf16 (its 8-bit mantissa loses small sums).
        var x32 = x.to(ScalarType.Float32);
        var normed = (x32 * rsqrt(x32.pow(2).mean([-1], keepdim: true) + _eps)).to(x.dtype);
        return (normed * weight).MoveToOuterDisposeScope();
    }
}
