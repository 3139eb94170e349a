using System.Diagnostics;
using Pipeline.Contracts.Checkpoints;
using Pipeline.Model;

namespace Pipeline.Bench;

/// <summary>
/// In-project weight-only quantization (`pipeline quantize`) of one checkpoint: weights in memory, held-out perplexity
/// and greedy generation speed (KV cache, one thread per core as the CLI runs) per setting, beside full precision.
/// Arguments: CHECKPOINT TEXTS (as for the gguf benchmark).
/// </summary>
public static class QuantizeBench
{
    public static Task RunAsync(string[] args)
    {
        if (args.Length < 2) throw new ArgumentException("usage: quantize CHECKPOINT TEXTS");
        var texts = GgufBench.HeldOutTexts(args[1]);
        WeightQuantization?[] settings = [null, new(8, 0, true), new(8, 32, true), new(8, 0, false), new(4, 32, true), new(4, 32, false)];
        Console.WriteLine("| weights | in memory (MiB) | ÷ | perplexity en | ja | vs full, en | ja | tokens/s (greedy, 128 new) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        double fullBytes = 0, fullEn = 0, fullJa = 0;
        foreach (var setting in settings)
        {
            var (model, _, tokenizer) = Cli.Commands.ModelCommands.Load(args[0], null);
            model.eval();
            if (setting is not null) model.Quantize(setting);
            var windows = GgufBench.Windows(texts, tokenizer, model.Config.Context);
            var en = Math.Exp(GgufBench.Nll(model, windows.Where(w => w.Language == "en")).Average());
            var ja = Math.Exp(GgufBench.Nll(model, windows.Where(w => w.Language == "ja")).Average());
            var prompts = texts.Take(4).Select(t => tokenizer.Encode(t.Text).Take(16).ToList()).ToList();
            TextGenerator.Generate(model, prompts[0], new SamplingOptions { Temperature = 0, MaxNewTokens = 8 }); // warm-up
            var clock = Stopwatch.StartNew();
            var generated = prompts.Sum(p => TextGenerator.Generate(model, p, new SamplingOptions { Temperature = 0, MaxNewTokens = 128 }).Count);
            var rate = generated / clock.Elapsed.TotalSeconds;
            double bytes = model.WeightBytes();
            if (setting is null) (fullBytes, fullEn, fullJa) = (bytes, en, ja);
            var name = setting is null ? "f32 (full precision)"
                : $"{setting.Name}, {(setting.GroupSize == 0 ? "per channel" : $"groups of {setting.GroupSize}")}{(setting.Embeddings ? "" : ", f32 embedding")}";
            Console.WriteLine($"| {name} | {bytes / 1048576:F2} | {fullBytes / bytes:F2} | {en:F3} | {ja:F3} | {en / fullEn - 1:+0.00%;-0.00%;0.00%} | {ja / fullJa - 1:+0.00%;-0.00%;0.00%} | {rate:F0} |");
            model.Dispose();
        }
        return Task.CompletedTask;
    }
}
