using System.Diagnostics;
using System.Text;
using Pipeline.Bpe;

namespace Pipeline.Bench;

/// <summary>
/// BPE training time, compression and encoding throughput on the corpus bench/build-corpus.py builds, to compare with
/// bench/sentencepiece-baseline.py on the same files. Arguments: data folder, vocab size.
/// </summary>
public static class TokenizerBench
{
    public static Task RunAsync(string[] args)
    {
        var data = args.Length > 0 ? args[0] : "bench/data";
        var vocab = args.Length > 1 ? int.Parse(args[1]) : 32_000;
        var lines = File.ReadAllLines(Path.Combine(data, "corpus.txt"));
        var held = File.ReadAllLines(Path.Combine(data, "heldout.txt"));
        var corpusBytes = lines.Sum(l => (long)Encoding.UTF8.GetByteCount(l) + 1);

        var watch = Stopwatch.StartNew();
        var model = new BpeTrainer(vocab).Train(lines);
        var trainSeconds = watch.Elapsed.TotalSeconds;
        var folder = Path.Combine(data, $"bpe-{vocab}");
        model.Save(folder);
        var tokenizer = TextTokenizer.Load(folder);

        // Encoding on one core (the stage itself encodes documents in parallel).
        watch.Restart();
        long tokens = 0;
        foreach (var line in lines) tokens += tokenizer.Encode(line).Count;
        var encodeSeconds = watch.Elapsed.TotalSeconds;
        var heldBytes = held.Sum(l => (long)Encoding.UTF8.GetByteCount(l));
        var heldTokens = held.Sum(l => (long)tokenizer.Encode(l).Count);
        Console.WriteLine($"pipeline BPE: vocab {vocab}, corpus {corpusBytes / 1e6:F1} MB, train {trainSeconds:F1} s, " +
                          $"encode {corpusBytes / 1e6 / encodeSeconds:F1} MB/s (one core), held-out {(double)heldBytes / heldTokens:F3} bytes/token");
        return Task.CompletedTask;
    }
}
