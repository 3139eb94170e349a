using System.Text;

namespace Pipeline.Release;

/// <summary>The tensor types this project writes, with ggml's numbers for them.</summary>
public enum GgmlType
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q8_0 = 8,
}

/// <summary>
/// Writes a GGUF v3 file (llama.cpp's model format, ggml/docs/gguf.md): the header, typed key/value metadata, tensor
/// descriptors and the aligned tensor data, with ggml's reference Q8_0 and Q4_0 block quantization. Written by hand:
/// no .NET library writes GGUF, and the format is a short, fixed layout.
/// </summary>
public sealed class GgufWriter
{
    public const int Alignment = 32;

    /// <summary>Values per quantization block of Q8_0 and Q4_0.</summary>
    public const int BlockSize = 32;

    private enum ValueType : uint { UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8, Array = 9 }

    private readonly List<(string Key, Action<BinaryWriter> Write)> _metadata = [];
    private readonly List<(string Name, long[] Shape, GgmlType Type, float[] Data)> _tensors = [];

    public void Add(string key, string value) => _metadata.Add((key, w => { w.Write((uint)ValueType.String); WriteString(w, value); }));
    public void Add(string key, uint value) => _metadata.Add((key, w => { w.Write((uint)ValueType.UInt32); w.Write(value); }));
    public void Add(string key, float value) => _metadata.Add((key, w => { w.Write((uint)ValueType.Float32); w.Write(value); }));
    public void Add(string key, bool value) => _metadata.Add((key, w => { w.Write((uint)ValueType.Bool); w.Write(value); }));

    public void Add(string key, IReadOnlyList<string> values) => _metadata.Add((key, w =>
    {
        w.Write((uint)ValueType.Array);
        w.Write((uint)ValueType.String);
        w.Write((ulong)values.Count);
        foreach (var v in values) WriteString(w, v);
    }));

    public void Add(string key, IReadOnlyList<int> values) => _metadata.Add((key, w =>
    {
        w.Write((uint)ValueType.Array);
        w.Write((uint)ValueType.Int32);
        w.Write((ulong)values.Count);
        foreach (var v in values) w.Write(v);
    }));

    /// <summary>
    /// A tensor by its PyTorch shape (outermost first) and row-major values; GGUF lists dimensions innermost first.
    /// Quantized types need rows whose length is a multiple of <see cref="BlockSize"/>.
    /// </summary>
    public void AddTensor(string name, long[] shape, GgmlType type, float[] data)
    {
        if (shape.Aggregate(1L, (a, b) => a * b) != data.Length) throw new ArgumentException($"tensor '{name}': {data.Length} values for shape [{string.Join(", ", shape)}]");
        if (type is GgmlType.Q8_0 or GgmlType.Q4_0 && shape[^1] % BlockSize != 0)
            throw new ArgumentException($"tensor '{name}': rows of {shape[^1]} values cannot be {type} (blocks of {BlockSize})");
        _tensors.Add((name, shape, type, data));
    }

    public void Save(Stream stream)
    {
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write("GGUF"u8);
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var (key, write) in _metadata)
        {
            WriteString(w, key);
            write(w);
        }
        var encoded = _tensors.Select(t => Encode(t.Type, t.Data)).ToList();
        ulong offset = 0;
        for (var i = 0; i < _tensors.Count; i++)
        {
            var (name, shape, type, _) = _tensors[i];
            WriteString(w, name);
            w.Write((uint)shape.Length);
            foreach (var d in shape.Reverse()) w.Write((ulong)d);
            w.Write((uint)type);
            w.Write(offset);
            offset += Padded((ulong)encoded[i].Length);
        }
        Pad(w);
        foreach (var bytes in encoded)
        {
            w.Write(bytes);
            Pad(w);
        }
    }

    private static ulong Padded(ulong n) => (n + Alignment - 1) / Alignment * Alignment;

    private static void Pad(BinaryWriter w)
    {
        w.Flush();
        var position = (ulong)w.BaseStream.Position;
        for (var i = position; i < Padded(position); i++) w.Write((byte)0);
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    public static byte[] Encode(GgmlType type, float[] data) => type switch
    {
        GgmlType.F32 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()).ToArray(),
        GgmlType.F16 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.Select(v => (Half)v).ToArray().AsSpan()).ToArray(),
        GgmlType.Q8_0 => QuantizeQ8_0(data),
        GgmlType.Q4_0 => QuantizeQ4_0(data),
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>ggml's quantize_row_q8_0_ref: per block of 32, scale d = max|x| / 127 (stored as f16), q = round(x / d).</summary>
    public static byte[] QuantizeQ8_0(ReadOnlySpan<float> x)
    {
        var blocks = x.Length / BlockSize;
        var output = new byte[blocks * (2 + BlockSize)];
        for (var b = 0; b < blocks; b++)
        {
            var block = x.Slice(b * BlockSize, BlockSize);
            var amax = 0f;
            foreach (var v in block) amax = Math.Max(amax, Math.Abs(v));
            var d = amax / 127f;
            var id = d != 0 ? 1f / d : 0f;
            var o = b * (2 + BlockSize);
            BitConverter.TryWriteBytes(output.AsSpan(o, 2), (Half)d);
            for (var j = 0; j < BlockSize; j++) output[o + 2 + j] = (byte)(sbyte)MathF.Round(block[j] * id, MidpointRounding.AwayFromZero);
        }
        return output;
    }

    /// <summary>
    /// ggml's quantize_row_q4_0_ref: per block of 32, the value of largest magnitude (with its sign) sets d = max / -8;
    /// q = min(15, trunc(x / d + 8.5)), two per byte (values j and j + 16 of the block in the low and high nibble).
    /// </summary>
    public static byte[] QuantizeQ4_0(ReadOnlySpan<float> x)
    {
        var blocks = x.Length / BlockSize;
        var output = new byte[blocks * (2 + BlockSize / 2)];
        for (var b = 0; b < blocks; b++)
        {
            var block = x.Slice(b * BlockSize, BlockSize);
            float amax = 0, max = 0;
            foreach (var v in block)
                if (Math.Abs(v) > amax) (amax, max) = (Math.Abs(v), v);
            var d = max / -8f;
            var id = d != 0 ? 1f / d : 0f;
            var o = b * (2 + BlockSize / 2);
            BitConverter.TryWriteBytes(output.AsSpan(o, 2), (Half)d);
            for (var j = 0; j < BlockSize / 2; j++)
            {
                var low = Math.Min(15, (int)(sbyte)(block[j] * id + 8.5f));
                var high = Math.Min(15, (int)(sbyte)(block[j + BlockSize / 2] * id + 8.5f));
                output[o + 2 + j] = (byte)(low | (high << 4));
            }
        }
        return output;
    }
}
