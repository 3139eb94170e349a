using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Model.Tests;

public sealed class GenerationTests
{
    private static Gpt Model()
    {
        manual_seed(5);
        return new Gpt(new GptConfig { VocabSize = 40, Layers = 2, Heads = 2, Width = 16, Context = 32 });
    }

    [Fact]
    public void Cached_logits_equal_full_forward_logits()
    {
        var model = Model();
        model.eval();
        using var _ = no_grad();
        long[] ids = [3, 7, 1, 9, 12, 5, 5, 30];
        var full = model.forward(tensor(ids, [1, ids.Length]));
        using var cache = new KvCache(2);
        var prefix = model.Forward(tensor(ids[..4], [1, 4]), cache);
        Assert.True(prefix.allclose(full[.., ..4], rtol: 1e-4, atol: 1e-5));
        for (var i = 4; i < ids.Length; i++)
        {
            var step = model.Forward(tensor(new[] { ids[i] }, [1, 1]), cache);
            Assert.True(step[0, 0].allclose(full[0, i], rtol: 1e-4, atol: 1e-5), $"position {i}");
        }
        Assert.Equal(ids.Length, cache.Length);
    }

    [Fact]
    public void Greedy_generation_is_the_same_with_and_without_the_cache()
    {
        var model = Model();
        var options = new SamplingOptions { Temperature = 0, MaxNewTokens = 20 };
        var cached = TextGenerator.Generate(model, [1, 2, 3], options);
        var uncached = TextGenerator.Generate(model, [1, 2, 3], options with { UseKvCache = false });
        Assert.Equal(20, cached.Count);
        Assert.Equal(uncached, cached);
    }

    [Fact]
    public void Batched_generation_of_prompts_of_different_lengths_equals_one_by_one()
    {
        var model = Model();
        List<int>[] prompts = [[1, 2, 3], [7], [4, 9, 9, 2, 5, 6]];
        var options = new SamplingOptions { Temperature = 0, MaxNewTokens = 12 };
        var batched = TextGenerator.GenerateBatch(model, prompts, options);
        for (var i = 0; i < prompts.Length; i++)
            Assert.Equal(TextGenerator.Generate(model, prompts[i], options), batched[i]);
        // A stop token ends one row while the others go on.
        var stopAt = batched[1][3];
        var stopped = TextGenerator.GenerateBatch(model, prompts, options, new HashSet<int> { stopAt });
        Assert.Equal(stopAt, stopped[1][^1]);
        Assert.True(stopped[1].Count <= 4);
    }

    [Fact]
    public void Sampling_respects_top_k_and_stop_tokens_and_is_seeded()
    {
        var model = Model();
        var options = new SamplingOptions { Temperature = 1.0, TopK = 1, MaxNewTokens = 10 };
        Assert.Equal(TextGenerator.Generate(model, [4], options with { Temperature = 0 }), TextGenerator.Generate(model, [4], options));
        var a = TextGenerator.Generate(model, [4], new SamplingOptions { Temperature = 1.5, TopK = 0, TopP = 0.9, Seed = 7 });
        var b = TextGenerator.Generate(model, [4], new SamplingOptions { Temperature = 1.5, TopK = 0, TopP = 0.9, Seed = 7 });
        Assert.Equal(a, b);
        var stopAt = a[2];
        var stopped = TextGenerator.Generate(model, [4], new SamplingOptions { Temperature = 1.5, TopK = 0, TopP = 0.9, Seed = 7 }, new HashSet<int> { stopAt });
        Assert.Equal(stopAt, stopped[^1]);
        Assert.True(stopped.Count <= 3);
    }
}
