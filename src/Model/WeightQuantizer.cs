using static TorchSharp.torch;

namespace Pipeline.Model;

/// <summary>
/// Symmetric weight-only quantization of a matrix (out, in) to int8 or int4: per output channel, or per group of
/// <c>group</c> consecutive inputs, scale = max|w| / qmax (127 or 7) stored as f16, q = round(w / scale). int4 values are
/// packed two to a byte (even input in the low nibble, offset by 8). Written by hand: TorchSharp has no weight-only
/// quantization for CPU inference.
/// </summary>
public static class WeightQuantizer
{
    public static (Tensor Values, Tensor Scales) Quantize(Tensor weight, int bits, int group)
    {
        using var scope = NewDisposeScope();
        var (rows, columns) = (weight.shape[0], weight.shape[1]);
        var size = group == 0 ? columns : group;
        var qmax = bits == 8 ? 127 : 7;
        var grouped = weight.detach().to(ScalarType.Float32).reshape(rows, columns / size, size);
        var scales = grouped.abs().amax([-1], keepdim: true) / qmax;
        // Rounded to what is stored, so that dequantization multiplies by exactly the scale the values were divided by.
        scales = scales.to(ScalarType.Float16).to(ScalarType.Float32).clamp_min(1e-12);
        var q = (grouped / scales).round().clamp(-qmax, qmax).to(ScalarType.Int8).reshape(rows, columns);
        if (bits == 4)
        {
            var offset = (q.to(ScalarType.Int16) + 8).to(ScalarType.Byte).reshape(rows, columns / 2, 2);
            q = (offset.select(2, 0) | offset.select(2, 1).bitwise_left_shift(4)).contiguous();
        }
        return (q.MoveToOuterDisposeScope(), scales.squeeze(-1).to(ScalarType.Float16).MoveToOuterDisposeScope());
    }

    public static Tensor Dequantize(Tensor values, Tensor scales, int bits, ScalarType dtype = ScalarType.Float32)
    {
        using var scope = NewDisposeScope();
        var rows = values.shape[0];
        var q = values;
        if (bits == 4)
        {
            var low = values.bitwise_and(0xF).to(ScalarType.Int8) - 8;
            var high = values.bitwise_right_shift(4).to(ScalarType.Int8) - 8;
            q = stack([low, high], 2).reshape(rows, -1);
        }
        var groups = scales.shape[1];
        var w = q.to(ScalarType.Float32).reshape(rows, groups, -1) * scales.to(ScalarType.Float32).unsqueeze(-1);
        return w.reshape(rows, -1).to(dtype).MoveToOuterDisposeScope();
    }
}
