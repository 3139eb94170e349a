using Pipeline.Contracts.Checkpoints;
using static TorchSharp.torch;

namespace Pipeline.Model.Tests;

public sealed class QuantizationTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("quantize-").FullName;

    public void Dispose() => Directory.Delete(_root, true);

    [Theory]
    [InlineData(8, 0)]
    [InlineData(8, 32)]
    [InlineData(4, 32)]
    public void Every_weight_comes_back_within_half_a_step_of_its_group(int bits, int group)
    {
        manual_seed(3);
        var w = randn(6, 64) * 0.1;
        w[2, 5] = tensor(0.9f); // an outlier: its group's scale, and only its group's, grows
        var (values, scales) = WeightQuantizer.Quantize(w, bits, group);
        Assert.Equal(bits == 8 ? ScalarType.Int8 : ScalarType.Byte, values.dtype);
        Assert.Equal(bits == 8 ? 64 : 32, values.shape[1]); // int4: two to a byte
        Assert.Equal(group == 0 ? 1 : 64 / group, scales.shape[1]);
        var back = WeightQuantizer.Dequantize(values, scales, bits);
        var size = group == 0 ? 64 : group;
        var qmax = bits == 8 ? 127 : 7;
        var step = w.abs().reshape(6, 64 / size, size).amax([-1], keepdim: true) / qmax;
        var error = (back - w).abs().reshape(6, 64 / size, size);
        Assert.True((error <= step / 2 + 1e-3 * step + 1e-7).all().item<bool>());
        // The largest weight of each group is exact up to the f16 scale.
        Assert.Equal(0.9, back[2, 5].item<float>(), 3);
    }

    [Fact]
    public async Task A_quantized_checkpoint_loads_samples_close_to_full_precision_and_is_never_trained()
    {
        manual_seed(5);
        var config = new GptConfig { VocabSize = 96, Layers = 2, Heads = 2, Width = 64, Context = 32 };
        var model = new Gpt(config);
        model.eval();
        var ids = randint(0, 96, [1, 24]);
        using var full = model.forward(ids);
        var fullBytes = model.WeightBytes();

        model.Quantize(new WeightQuantization(8, 0, Embeddings: true));
        using var quantized = model.forward(ids);
        Assert.True((quantized - full).abs().max().item<float>() < 0.05 * full.abs().max().item<float>());
        Assert.True((double)fullBytes / model.WeightBytes() >= 3.5, $"{fullBytes} -> {model.WeightBytes()} bytes");

        var info = new CheckpointInfo("q", 1, 0, "h", null, new TrainingConfig { RunName = "q", Model = config }) { Quantization = model.Quantization };
        var folder = Checkpoints.Save(Path.Combine(_root, "q"), model, null, info, keepLast: 1);
        var (loaded, loadedInfo) = Checkpoints.Load(folder, CPU);
        loaded.eval();
        Assert.Equal(model.Quantization, loaded.Quantization);
        using (var again = loaded.forward(ids)) Assert.Equal(0f, (again - quantized).abs().max().item<float>());

        // Training needs full-precision weights: a resume from it and a training loop over it are refused.
        var optimizer = optim.AdamW(new Gpt(config).parameters());
        Assert.Contains("is quantized (int8)", Assert.Throws<InvalidDataException>(() => Checkpoints.Load(folder, CPU, optimizer)).Message);
        var loop = new TrainingLoop(loaded, optimizer, new GuardedUpdate([.. loaded.parameters()], optimizer, 1.0, "q"), _ => 1e-3);
        Assert.Contains("quantized", (await Assert.ThrowsAsync<InvalidOperationException>(() => loop.RunAsync(0, 1, null!, _ => Task.FromResult(true), CancellationToken.None))).Message);
        Assert.Throws<InvalidOperationException>(() => loaded.AddLora(4, 8, 0, ["attn"]));
    }
}
