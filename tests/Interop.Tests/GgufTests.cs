using System.Text.Json;
using Pipeline.Model;
using Pipeline.Release;
using static TorchSharp.torch;

namespace Pipeline.Interop.Tests;

/// <summary>
/// The GGUF export loaded by llama.cpp itself (node-llama-cpp's prebuilt binaries): it must continue our prompts as
/// we do and give each token the probability we give it. A swapped tensor, a missing rotary permutation or a wrong
/// quantization layout changes both.
/// </summary>
public sealed class GgufTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("gguf-").FullName;

    public void Dispose() => Directory.Delete(_root, true);

    private static readonly string[] Prompts =
    [
        "Debian は「ユニバーサルオペレーティングシステム」です。",
        "The Debian project is an association of individuals who have made common cause.",
    ];

    private sealed record LlamaCppOutput(int[][] Continuations, double[][] Nll, int[][] Tokenized, string Architecture, string PreTokenizer);

    /// <summary>Runs tests/interop/llama-cpp.mjs once over several models (one node process: llama.cpp starts once).</summary>
    private LlamaCppOutput[] RunLlamaCpp(params object[] runs)
    {
        var inputPath = Path.Combine(_root, "input.json");
        var outputPath = Path.Combine(_root, "output.json");
        File.WriteAllText(inputPath, JsonSerializer.Serialize(runs));
        Ecosystem.Node("llama-cpp.mjs", inputPath, outputPath);
        return JsonSerializer.Deserialize<LlamaCppOutput[]>(File.ReadAllText(outputPath), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
    }

    private string Export(Gpt model, string checkpoint, Bpe.TextTokenizer tokenizer, GgmlType type, Func<string, Tensor, Tensor>? tamper = null)
    {
        var path = Path.Combine(_root, $"model-{type}-{Guid.NewGuid():N}.gguf");
        using var stream = File.Create(path);
        using var _ = no_grad();
        var tensors = GgufExport.Tensors(model).Select(t => tamper is null ? t : (t.Name, tamper(t.Name, t.Weights)));
        GgufExport.Write(model.Config, Checkpoints.ReadInfo(checkpoint), tokenizer, tensors, stream, type);
        return path;
    }

    /// <summary>-ln p(token | the ones before) of each token after the first, by our model.</summary>
    private static double[] Nll(Gpt model, IReadOnlyList<int> ids)
    {
        model.eval();
        using var _ = no_grad();
        using var logits = model.forward(tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Count]));
        using var logProbs = nn.functional.log_softmax(logits[0].to(ScalarType.Float64), 1);
        return Enumerable.Range(0, ids.Count - 1).Select(t => -logProbs[t, ids[t + 1]].item<double>()).ToArray();
    }

    [Fact]
    public void Llama_cpp_continues_our_prompts_as_we_do_and_gives_every_token_our_probability()
    {
        var (tokenizer, model, checkpoint) = ExportTests.Fixture(_root, context: 64, weightStd: 0.3);
        var prompts = Prompts.Select(p => tokenizer.Encode(p).Take(24).ToList()).ToList();
        var ours = prompts.Select(p => TextGenerator.Generate(model, p, new SamplingOptions { Temperature = 0, MaxNewTokens = 16 }, new HashSet<int> { tokenizer.EndOfText })).ToList();
        var text = tokenizer.Encode(string.Join(" ", Prompts)).Take(64).ToList();
        var expectedNll = Nll(model, text);

        GgmlType[] types = [GgmlType.F32, GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_0];
        var unpermuted = Export(model, checkpoint, tokenizer, GgmlType.F32,
            (name, w) => name.EndsWith("attn_q.weight") || name.EndsWith("attn_k.weight") ? UndoPermutation(w, model.Config.Heads) : w);
        var swapped = Export(model, checkpoint, tokenizer, GgmlType.F32,
            (name, w) => name == "blk.0.ffn_gate.weight" ? model.state_dict()["blocks.0.mlp.up.weight"] : name == "blk.0.ffn_up.weight" ? model.state_dict()["blocks.0.mlp.gate.weight"] : w);
        var outputs = RunLlamaCpp([.. types.Select(t => (object)new { model = Export(model, checkpoint, tokenizer, t), prompts, generate = 16, texts = new[] { text } }),
                                   new { model = unpermuted, texts = new[] { text } }, new { model = swapped, texts = new[] { text } }]);
        var results = types.Select((t, i) => (t, outputs[i])).ToDictionary(x => x.t, x => x.Item2);

        Assert.Equal("llama", results[GgmlType.F32].Architecture);
        Assert.Equal(GgufExport.DefaultPreTokenizer, results[GgmlType.F32].PreTokenizer);
        // f32 and f16: the same greedy continuation as `pipeline sample --temperature 0`, for Japanese and English.
        foreach (var type in new[] { GgmlType.F32, GgmlType.F16 })
            for (var i = 0; i < prompts.Count; i++)
                Assert.True(ours[i].SequenceEqual(results[type].Continuations[i]), $"{type}, prompt {i}: ours [{string.Join(",", ours[i])}], llama.cpp [{string.Join(",", results[type].Continuations[i])}]");
        // Every token's probability: f32 close (llama.cpp keeps its key/value cache in f16: 0.007 measured), f16 a little
        // further; q8_0 and q4_0 near on average, q8_0 closer than q4_0 token by token.
        double Worst(double[] nll) => expectedNll.Zip(nll, (a, b) => Math.Abs(a - b)).Max();
        double WorstDifference(GgmlType type) => Worst(results[type].Nll[0]);
        Assert.True(WorstDifference(GgmlType.F32) < 0.02, $"f32: largest -ln p difference {WorstDifference(GgmlType.F32)}");
        Assert.True(WorstDifference(GgmlType.F16) < 0.05, $"f16: largest -ln p difference {WorstDifference(GgmlType.F16)}");
        double MeanNll(GgmlType type) => results[type].Nll[0].Average();
        Assert.InRange(MeanNll(GgmlType.Q8_0) / MeanNll(GgmlType.F32), 0.99, 1.01);
        Assert.InRange(MeanNll(GgmlType.Q4_0) / MeanNll(GgmlType.F32), 0.9, 1.1);
        Assert.True(WorstDifference(GgmlType.Q8_0) < WorstDifference(GgmlType.Q4_0), "q8_0 should be closer to full precision than q4_0");

        // The test can fail: without the rotary permutation of q and k, or with two tensors swapped, llama.cpp's
        // probabilities are not ours.
        Assert.True(Worst(outputs[^2].Nll[0]) > 0.5, $"without the permutation: largest difference {Worst(outputs[^2].Nll[0])}");
        Assert.True(Worst(outputs[^1].Nll[0]) > 0.5, $"with gate and up swapped: largest difference {Worst(outputs[^1].Nll[0])}");
    }

    private static Tensor UndoPermutation(Tensor w, long heads)
    {
        var (rows, columns) = (w.shape[0], w.shape[1]);
        return w.reshape(heads, rows / heads / 2, 2, columns).transpose(1, 2).reshape(rows, columns);
    }

    [Fact]
    public void Quantized_blocks_are_ggml_reference_layout()
    {
        // One block of 32: Q8_0 is an f16 scale max|x|/127 and 32 signed bytes; Q4_0 is an f16 scale max/-8 (the value
        // of largest magnitude, with its sign) and 16 bytes of two nibbles, value j low and value j+16 high.
        var x = Enumerable.Range(0, 32).Select(i => (i - 10) / 4f).ToArray(); // -2.5 .. 5.25
        var q8 = GgufWriter.QuantizeQ8_0(x);
        Assert.Equal(34, q8.Length);
        var d8 = (float)BitConverter.ToHalf(q8, 0);
        Assert.Equal(5.25f / 127, d8, 1e-4);
        Assert.Equal(127, (sbyte)q8[2 + 31]);
        Assert.Equal((sbyte)MathF.Round(-2.5f / d8, MidpointRounding.AwayFromZero), (sbyte)q8[2]);
        var q4 = GgufWriter.QuantizeQ4_0(x);
        Assert.Equal(18, q4.Length);
        var d4 = (float)BitConverter.ToHalf(q4, 0);
        Assert.Equal(5.25f / -8, d4, 1e-3);
        for (var j = 0; j < 16; j++)
        {
            Assert.InRange(((q4[2 + j] & 0xF) - 8) * d4 - x[j], -Math.Abs(d4) / 2 - 1e-3, Math.Abs(d4) / 2 + 1e-3);
            Assert.InRange(((q4[2 + j] >> 4) - 8) * d4 - x[j + 16], -Math.Abs(d4) / 2 - 1e-3, Math.Abs(d4) / 2 + 1e-3);
        }
    }
}
