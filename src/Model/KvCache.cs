using static TorchSharp.torch;

namespace Pipeline.Model;

/// <summary>
/// Keys and values of the positions already processed, per layer, so that generation feeds one new token per step
/// instead of the whole sequence. Owns its tensors (outside any dispose scope) until disposed.
/// </summary>
public sealed class KvCache(int layers) : IDisposable
{
    private readonly Tensor?[] _keys = new Tensor?[layers];
    private readonly Tensor?[] _values = new Tensor?[layers];

    /// <summary>Positions cached so far.</summary>
    public long Length { get; internal set; }

    /// <summary>Appends this step's keys and values (B, heads, T, headDim) for a layer; returns the full ones.</summary>
    internal (Tensor K, Tensor V) Append(int layer, Tensor k, Tensor v)
    {
        var keys = _keys[layer] is { } oldK ? cat([oldK, k], dim: 2) : k.alias();
        var values = _values[layer] is { } oldV ? cat([oldV, v], dim: 2) : v.alias();
        _keys[layer]?.Dispose();
        _values[layer]?.Dispose();
        _keys[layer] = keys.DetachFromDisposeScope();
        _values[layer] = values.DetachFromDisposeScope();
        return (keys, values);
    }

    public void Dispose()
    {
        foreach (var t in _keys.Concat(_values)) t?.Dispose();
        Array.Clear(_keys);
        Array.Clear(_values);
    }
}
