using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Storage;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Model;

/// <summary>
/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a JSON header mapping each
/// tensor name to dtype, shape and [begin, end) byte offsets into the data that follows, then the raw little-endian
/// tensor bytes. Hand-written because TorchSharp cannot read or write it. Tensors are stored as F32.
/// </summary>
public static class Safetensors
{
    public sealed record Entry(string Dtype, long[] Shape, long Begin, long End);

    public static void Save(nn.Module module, string path, IReadOnlyDictionary<string, string>? metadata = null) =>
        Save(module.state_dict(), path, metadata);

    /// <summary>Writes the given named tensors (for example only a LoRA adapter's).</summary>
    public static void Save(IEnumerable<KeyValuePair<string, Tensor>> named, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var tensors = named.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (kv.Key, Data: kv.Value.detach().to(float32).cpu().contiguous().data<float>().ToArray(), Shape: kv.Value.shape))
            .ToList();
        var header = new JsonObject();
        if (metadata is not null)
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata) meta[k] = v;
            header["__metadata__"] = meta;
        }
        long offset = 0;
        foreach (var (name, data, shape) in tensors)
        {
            var end = offset + (long)data.Length * sizeof(float);
            header[name] = new JsonObject
            {
                ["dtype"] = "F32",
                ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, end),
            };
            offset = end;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        // Pad with spaces so the tensor data starts 8-byte aligned, as the reference implementation does.
        var padded = (json.Length + 7) / 8 * 8;
        AtomicWrite.File(path, file =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
            file.Write(length);
            file.Write(json);
            for (var i = json.Length; i < padded; i++) file.WriteByte((byte)' ');
            foreach (var (_, data, _) in tensors) file.Write(MemoryMarshal.AsBytes(data.AsSpan()));
        });
    }

    /// <summary>Reads and checks the header: offsets must tile the data exactly, in order, with no gaps or overlaps.</summary>
    public static (Dictionary<string, Entry> Tensors, Dictionary<string, string> Metadata, long DataStart) ReadHeader(string path)
    {
        using var file = File.OpenRead(path);
        Span<byte> length = stackalloc byte[8];
        if (file.Read(length) != 8) throw new InvalidDataException($"'{path}' is not a safetensors file: shorter than 8 bytes");
        var size = BinaryPrimitives.ReadUInt64LittleEndian(length);
        if (size > 100_000_000 || (long)size > file.Length - 8) throw new InvalidDataException($"'{path}': header length {size} is out of range");
        var json = new byte[size];
        file.ReadExactly(json);
        if (json.Length == 0 || json[0] != (byte)'{') throw new InvalidDataException($"'{path}': the header does not start with '{{'");
        var root = JsonNode.Parse(json)!.AsObject();
        var tensors = new Dictionary<string, Entry>();
        var metadata = new Dictionary<string, string>();
        foreach (var (name, node) in root)
        {
            if (name == "__metadata__")
            {
                foreach (var (k, v) in node!.AsObject()) metadata[k] = v!.GetValue<string>();
                continue;
            }
            var offsets = node!["data_offsets"]!.AsArray().Select(o => o!.GetValue<long>()).ToArray();
            tensors[name] = new Entry(node["dtype"]!.GetValue<string>(), node["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray(), offsets[0], offsets[1]);
        }
        long expected = 0;
        foreach (var entry in tensors.Values.OrderBy(e => e.Begin))
        {
            if (entry.Begin != expected) throw new InvalidDataException($"'{path}': tensor data is not contiguous at byte {entry.Begin}");
            var width = ElementSize(entry.Dtype) ?? throw new InvalidDataException($"'{path}': dtype {entry.Dtype} is not supported (F32, F16 or BF16)");
            if (entry.End - entry.Begin != entry.Shape.Aggregate(1L, (a, b) => a * b) * width)
                throw new InvalidDataException($"'{path}': byte range of a tensor does not match its shape");
            expected = entry.End;
        }
        if (8 + (long)size + expected != file.Length) throw new InvalidDataException($"'{path}': data section is {file.Length - 8 - (long)size} bytes, header describes {expected}");
        return (tensors, metadata, 8 + (long)size);
    }

    /// <summary>
    /// Loads the tensors into a module with the same parameter names. Strict: the file must hold every tensor of the
    /// module; otherwise only those in the file are loaded (an adapter), each of which the module must have.
    /// </summary>
    public static void LoadInto(nn.Module module, string path, bool strict = true)
    {
        var tensors = ReadAll(path);
        var state = module.state_dict();
        var missing = state.Keys.Except(tensors.Keys).ToList();
        if (strict && missing.Count > 0) throw new InvalidDataException($"'{path}' lacks {string.Join(", ", missing)}");
        using var _ = no_grad();
        foreach (var (name, source) in tensors)
        {
            if (!state.TryGetValue(name, out var target)) throw new InvalidDataException($"'{path}' has tensor '{name}' that the model does not");
            target.copy_(source);
            source.Dispose();
        }
    }

    /// <summary>Every tensor of a file as fp32 (F16 and BF16, as Hugging Face checkpoints often are, are widened).</summary>
    public static Dictionary<string, Tensor> ReadAll(string path)
    {
        var (entries, _, start) = ReadHeader(path);
        var bytes = File.ReadAllBytes(path);
        var result = new Dictionary<string, Tensor>();
        foreach (var (name, entry) in entries)
        {
            var raw = bytes.AsSpan((int)(start + entry.Begin), (int)(entry.End - entry.Begin));
            var data = entry.Dtype switch
            {
                "F32" => MemoryMarshal.Cast<byte, float>(raw).ToArray(),
                "F16" => MemoryMarshal.Cast<byte, Half>(raw).ToArray().Select(h => (float)h).ToArray(),
                // bfloat16 is the top half of an IEEE float32.
                _ => MemoryMarshal.Cast<byte, ushort>(raw).ToArray().Select(b => BitConverter.Int32BitsToSingle(b << 16)).ToArray(),
            };
            result[name] = tensor(data, entry.Shape);
        }
        return result;
    }

    private static int? ElementSize(string dtype) => dtype switch { "F32" => 4, "F16" or "BF16" => 2, _ => null };
}
