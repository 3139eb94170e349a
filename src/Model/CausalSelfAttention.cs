using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Model;

/// <summary>Multi-head causal self-attention with rotary position embeddings and PyTorch's fused SDPA.</summary>
public sealed class CausalSelfAttention : nn.Module<Tensor, Tensor>
{
    private readonly AdaptableLinear qkv;
    private readonly AdaptableLinear proj;
    private readonly int _heads;
    private readonly int _width;

    public CausalSelfAttention(string name, GptConfig config) : base(name)
    {
        _heads = config.Heads;
        _width = config.Width;
        qkv = new AdaptableLinear("qkv", config.Width, 3 * config.Width);
        proj = new AdaptableLinear("proj", config.Width, config.Width);
        RegisterComponents();
    }

    public AdaptableLinear Projection => proj;
    public AdaptableLinear QueryKeyValue => qkv;

    /// <summary>Rotary tables (cos, sin), shape (T, headDim/2); set by the model before forward.</summary>
    public (Tensor Cos, Tensor Sin) Rope { get; set; }

    public override Tensor forward(Tensor x) => Forward(x, null, 0);

    /// <summary>
    /// Attention for positions start..start+T; with a cache, earlier positions' keys and values come from it and
    /// this step's are appended (generation). One new token attends to every cached position, so no mask is needed.
    /// With <paramref name="packing"/>, a row holds several sequences: each attends only within itself and its rotary
    /// positions restart at 0, so a packed sequence is computed exactly as if it were alone.
    /// </summary>
    public Tensor Forward(Tensor x, KvCache? cache, int layer, Tensor? keyMask = null, SequencePacking? packing = null)
    {
        using var scope = NewDisposeScope();
        var (b, t) = (x.shape[0], x.shape[1]);
        var start = cache?.Length ?? 0;
        var headDim = _width / _heads;
        var parts = qkv.forward(x).split(_width, dim: 2);
        var (cos, sin) = packing is null
            ? (Rope.Cos.narrow(0, start, t), Rope.Sin.narrow(0, start, t))
            : (Rope.Cos[packing.Positions].unsqueeze(1), Rope.Sin[packing.Positions].unsqueeze(1));
        var q = ApplyRope(parts[0].view(b, t, _heads, headDim).transpose(1, 2), cos, sin);
        var k = ApplyRope(parts[1].view(b, t, _heads, headDim).transpose(1, 2), cos, sin);
        var v = parts[2].view(b, t, _heads, headDim).transpose(1, 2);
        if (cache is not null) (k, v) = cache.Append(layer, k, v);
        if (start > 0 && t > 1) throw new NotSupportedException("a cached forward takes one token at a time after the prompt");
        Tensor y;
        if (packing is not null)
        {
            // Block-diagonal causal mask: same sequence and not in the future.
            var segments = packing.Segments;
            var causal = ones(t, t, dtype: @bool, device: x.device).tril();
            var mask = (segments.unsqueeze(2) == segments.unsqueeze(1)) & causal.unsqueeze(0);
            y = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: mask.unsqueeze(1));
        }
        else if (keyMask is null)
        {
            y = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: start == 0);
        }
        else
        {
            // Batched generation with left padding: a query sees earlier keys that are not padding. Rotary positions
            // make attention depend only on relative positions, so padding on the left changes nothing for real tokens.
            // Every query also sees itself, so a padding query never has an empty (NaN) row.
            var total = start + t;
            var queryPos = arange(start, total, device: x.device).unsqueeze(1);
            var keyPos = arange(0, total, device: x.device).unsqueeze(0);
            var mask = (keyPos <= queryPos).unsqueeze(0).unsqueeze(0) & keyMask.unsqueeze(1).unsqueeze(1);
            mask = mask | (keyPos == queryPos).unsqueeze(0).unsqueeze(0);
            y = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask: mask);
        }
        y = y.transpose(1, 2).contiguous().view(b, t, _width);
        return proj.forward(y).MoveToOuterDisposeScope();
    }

    private static Tensor ApplyRope(Tensor x, Tensor cos, Tensor sin)
    {
        var half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        // The tables stay fp32; under bf16 compute the rotation runs in fp32 and the result is cast back.
        return cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim: -1).to(x.dtype);
    }
}
