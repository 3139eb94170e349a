using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Model;

/// <summary>Sampling settings: temperature 0 is greedy; top-k 0 and top-p 1 disable those filters.</summary>
public sealed record SamplingOptions
{
    public double Temperature { get; init; } = 0.8;
    public int TopK { get; init; } = 50;
    public double TopP { get; init; } = 0.95;
    public int MaxNewTokens { get; init; } = 128;
    public long Seed { get; init; } = 1;
    /// <summary>With the KV cache each step feeds one token; without, the whole window (for comparison).</summary>
    public bool UseKvCache { get; init; } = true;
}

/// <summary>Autoregressive generation from a GPT: temperature, top-k and nucleus (top-p) sampling, KV cache.</summary>
public static class TextGenerator
{
    /// <summary>Generates after <paramref name="prompt"/>; stops at <paramref name="stopTokens"/> or the budget. Returns the new ids.</summary>
    public static List<int> Generate(Gpt model, IReadOnlyList<int> prompt, SamplingOptions options, ISet<int>? stopTokens = null, Func<IReadOnlyList<int>, bool>? stop = null)
    {
        if (prompt.Count == 0) throw new ArgumentException("the prompt is empty; give at least one token (for example <|endoftext|>)");
        model.eval();
        using var _ = no_grad();
        var device = model.parameters().First().device;
        var context = model.Config.Context;
        var tokens = prompt.Skip(Math.Max(0, prompt.Count - context + 1)).ToList();
        var generated = new List<int>();
        var random = new torch.Generator((ulong)options.Seed);
        using var cache = options.UseKvCache ? new KvCache(model.Config.Layers) : null;
        Tensor? next = null;
        for (var step = 0; step < options.MaxNewTokens; step++)
        {
            using var scope = NewDisposeScope();
            Tensor logits;
            if (cache is not null)
            {
                if (cache.Length + 1 > context) break; // the window is full; a cache cannot slide
                var input = step == 0 ? tensor(tokens.Select(t => (long)t).ToArray(), [1, tokens.Count], device: device) : next!.view(1, 1);
                logits = model.Forward(input, cache)[0, -1];
            }
            else
            {
                var window = tokens.Skip(Math.Max(0, tokens.Count - context)).Select(t => (long)t).ToArray();
                logits = model.forward(tensor(window, [1, window.Length]).to(device))[0, -1];
            }
            var id = Sample(logits, options, random);
            next = tensor(new long[] { id }).to(device).DetachFromDisposeScope();
            tokens.Add(id);
            generated.Add(id);
            if (stopTokens?.Contains(id) == true || stop?.Invoke(generated) == true) break;
        }
        next?.Dispose();
        return generated;
    }

    /// <summary>
    /// Generates for several prompts at once with one KV cache: prompts are left-padded and masked, finished rows stop
    /// contributing. Greedy results equal <see cref="Generate"/>'s for each prompt (tested).
    /// </summary>
    public static List<List<int>> GenerateBatch(Gpt model, IReadOnlyList<IReadOnlyList<int>> prompts, SamplingOptions options, ISet<int>? stopTokens = null,
        Func<IReadOnlyList<int>, bool>? stop = null)
    {
        if (prompts.Any(p => p.Count == 0)) throw new ArgumentException("a prompt is empty; give at least one token");
        model.eval();
        using var _ = no_grad();
        var device = model.parameters().First().device;
        var context = model.Config.Context;
        var trimmed = prompts.Select(p => p.Skip(Math.Max(0, p.Count - context + 1)).ToList()).ToList();
        var length = trimmed.Max(p => p.Count);
        var batch = trimmed.Count;
        var ids = new long[batch * length];
        var valid = new bool[batch * length];
        for (var b = 0; b < batch; b++)
        {
            var pad = length - trimmed[b].Count;
            for (var t = 0; t < trimmed[b].Count; t++)
            {
                ids[b * length + pad + t] = trimmed[b][t];
                valid[b * length + pad + t] = true;
            }
        }
        var outputs = Enumerable.Range(0, batch).Select(_ => new List<int>()).ToList();
        var finished = new bool[batch];
        var random = new torch.Generator((ulong)options.Seed);
        using var cache = new KvCache(model.Config.Layers);
        var mask = tensor(valid, [batch, length]).to(device).DetachFromDisposeScope();
        Tensor input = tensor(ids, [batch, length]).to(device).DetachFromDisposeScope();
        try
        {
            for (var step = 0; step < options.MaxNewTokens && cache.Length + input.shape[1] <= context && !finished.All(f => f); step++)
            {
                using var scope = NewDisposeScope();
                var logits = model.Forward(input, cache, mask)[.., -1];
                var next = new long[batch];
                for (var b = 0; b < batch; b++)
                {
                    next[b] = Sample(logits[b], options, random);
                    if (finished[b]) continue;
                    outputs[b].Add((int)next[b]);
                    if (stopTokens?.Contains((int)next[b]) == true || stop?.Invoke(outputs[b]) == true) finished[b] = true;
                }
                input.Dispose();
                input = tensor(next, [batch, 1]).to(device).DetachFromDisposeScope();
                var grown = cat([mask, ones(batch, 1, dtype: @bool, device: device)], dim: 1).DetachFromDisposeScope();
                mask.Dispose();
                mask = grown;
            }
        }
        finally
        {
            input.Dispose();
            mask.Dispose();
        }
        return outputs;
    }

    private static int Sample(Tensor logits, SamplingOptions options, TorchSharp.torch.Generator random)
    {
        if (options.Temperature <= 0) return (int)logits.argmax().item<long>();
        // Sampling runs on the CPU on purpose: the seeded generator is a CPU generator, and multinomial with a CPU
        // generator on a CUDA tensor raises. One vocabulary-sized vector per token is a small copy.
        logits = logits.to(float32).cpu() / options.Temperature;
        if (options.TopK > 0 && options.TopK < logits.shape[0])
        {
            var kth = logits.topk(options.TopK).values[-1];
            logits = logits.masked_fill(logits < kth, double.NegativeInfinity);
        }
        if (options.TopP < 1)
        {
            var (sorted, order) = logits.sort(descending: true);
            var cumulative = sorted.softmax(0).cumsum(0);
            // Drop tokens once the mass before them already reaches top-p (the first token is always kept).
            var remove = (cumulative - sorted.softmax(0)) > options.TopP;
            logits = logits.scatter(0, order, sorted.masked_fill(remove, double.NegativeInfinity));
        }
        return (int)multinomial(logits.softmax(0), 1, generator: random).item<long>();
    }
}
