using System.Buffers.Binary;
using System.Text.Json;
using Pipeline.Model;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Model.Tests;

public sealed class SafetensorsTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("st-").FullName;

    [Fact]
    public void Export_follows_the_specification_and_round_trips()
    {
        var config = new GptConfig { VocabSize = 50, Layers = 2, Heads = 2, Width = 16, Context = 8 };
        manual_seed(1);
        var model = new Gpt(config);
        var path = Path.Combine(_root, "model.safetensors");
        Safetensors.Save(model, path, new Dictionary<string, string> { ["format"] = "pt", ["tokenizer"] = "abc" });

        // Header by hand, as the specification describes it.
        var bytes = File.ReadAllBytes(path);
        var headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, (8 + headerLength) % 8);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        Assert.Equal("abc", header.RootElement.GetProperty("__metadata__").GetProperty("tokenizer").GetString());
        var tensors = header.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__").ToList();
        Assert.Equal(model.state_dict().Count, tensors.Count);
        var embedding = header.RootElement.GetProperty("wte.weight");
        Assert.Equal("F32", embedding.GetProperty("dtype").GetString());
        Assert.Equal([50, 16], embedding.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()));
        var total = tensors.Sum(t => t.Value.GetProperty("data_offsets")[1].GetInt64() - t.Value.GetProperty("data_offsets")[0].GetInt64());
        Assert.Equal(bytes.Length - 8 - headerLength, total);
        var begin = embedding.GetProperty("data_offsets")[0].GetInt64();
        var first = BitConverter.ToSingle(bytes, (int)(8 + headerLength + begin));
        Assert.Equal(model.state_dict()["wte.weight"][0, 0].item<float>(), first);

        // Round trip into a differently initialised model gives the same logits.
        manual_seed(2);
        var other = new Gpt(config);
        var ids = tensor(new long[] { 1, 2, 3, 4, 5, 6, 7, 8 }, [1, 8]);
        Assert.False(model.forward(ids).allclose(other.forward(ids)));
        Safetensors.LoadInto(other, path);
        Assert.True(model.forward(ids).allclose(other.forward(ids)));
    }

    [Fact]
    public void A_truncated_file_is_refused()
    {
        var model = new Gpt(new GptConfig { VocabSize = 20, Layers = 1, Heads = 2, Width = 8, Context = 4 });
        var path = Path.Combine(_root, "m.safetensors");
        Safetensors.Save(model, path);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^4]);
        Assert.Throws<InvalidDataException>(() => Safetensors.ReadHeader(path));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
