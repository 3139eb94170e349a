using System.Diagnostics;
using Pipeline.Model;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Bench;

/// <summary>Generation tokens/s with and without the KV cache (256 new tokens), and log-likelihood scoring examples/s, on the CPU.</summary>
public static class GenerateBench
{
    public static Task RunAsync(string[] args)
    {
        set_num_threads(2);
        manual_seed(1);
        // The sample run's model shape, with room for 256 new tokens.
        var model = new Gpt(new GptConfig { VocabSize = 2048, Layers = 2, Heads = 4, Width = 128, Context = 512 });
        var prompt = Enumerable.Range(1, 32).ToList();
        foreach (var cached in new[] { true, false })
        {
            TextGenerator.Generate(model, prompt, new SamplingOptions { Temperature = 0, MaxNewTokens = 8, UseKvCache = cached });
            var watch = Stopwatch.StartNew();
            var output = TextGenerator.Generate(model, prompt, new SamplingOptions { Temperature = 0, MaxNewTokens = 256, UseKvCache = cached });
            Console.WriteLine($"generate {(cached ? "with KV cache   " : "without KV cache")}: {output.Count} tokens in {watch.Elapsed.TotalSeconds:F2} s = {output.Count / watch.Elapsed.TotalSeconds:F0} tokens/s");
        }
        // Scoring: log-likelihood of 64-token continuations after 64-token contexts, batches of 16.
        model.eval();
        using var _ = no_grad();
        var ids = randint(0, 2048, [16, 128], dtype: int64);
        var sw = Stopwatch.StartNew();
        var examples = 0;
        while (sw.Elapsed.TotalSeconds < 5)
        {
            using var scope = NewDisposeScope();
            var logits = model.forward(ids[.., ..^1]);
            var logProbs = logits.log_softmax(-1).gather(-1, ids[.., 1..].unsqueeze(-1)).squeeze(-1)[.., 63..].sum(-1);
            logProbs.sum().item<float>();
            examples += 16;
        }
        Console.WriteLine($"log-likelihood scoring: {examples / sw.Elapsed.TotalSeconds:F0} examples/s (64-token continuations after 64-token contexts, batch 16)");
        return Task.CompletedTask;
    }
}
