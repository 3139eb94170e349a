using System.Diagnostics;
using Pipeline.Alignment;
using Pipeline.Model;
using Pipeline.Bpe;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Bench;

/// <summary>
/// SFT throughput with and without packing, in supervised (assistant) tokens per second, on the sample run's model
/// shape and the shipped chat examples (samples/alignment/sft-ja.jsonl), 2 threads. Arguments: SFT data file, steps.
/// </summary>
public static class AlignBench
{
    public static Task RunAsync(string[] args)
    {
        var path = args.Length > 0 ? args[0] : "samples/alignment/sft-ja.jsonl";
        var steps = args.Length > 1 ? int.Parse(args[1]) : 40;
        set_num_threads(2);
        var errors = new List<string>();
        var data = AlignmentData.ReadSft(path, errors);
        var folder = Directory.CreateTempSubdirectory("align-bench-").FullName;
        new BpeTrainer(2048).Train(data.SelectMany(e => e.Messages.Select(m => m.Content))).Save(folder);
        var tokenizer = TextTokenizer.Load(folder);
        var template = new ChatTemplate(tokenizer);
        var examples = data.Select(e => template.Encode(e.Messages)).ToList();
        const int context = 128;
        var supervised = examples.Sum(e => e.Trained.Skip(1).Count(t => t)) / (double)examples.Count;
        Console.WriteLine($"align: {examples.Count} examples, {examples.Average(e => e.Ids.Count):F0} tokens and {supervised:F0} supervised tokens on average; context {context}");
        foreach (var packing in new[] { false, true })
        {
            manual_seed(1);
            var model = new Gpt(new GptConfig { VocabSize = tokenizer.VocabSize, Layers = 2, Heads = 4, Width = 128, Context = context });
            var config = new AlignmentConfig { Steps = steps, BatchSize = 8, LearningRate = 1e-3, Packing = packing };
            var watch = Stopwatch.StartNew();
            var report = AlignmentTrainer.Sft(model, examples, config, tokenizer.SpecialIds[SpecialTokens.Pad]);
            var seconds = watch.Elapsed.TotalSeconds;
            // Rows are sampled uniformly, so a step sees BatchSize rows of (examples / rows) examples on average.
            var perStep = config.BatchSize * (double)report.Examples / report.Rows * supervised;
            Console.WriteLine($"align sft {(packing ? "packed" : "padded")}: {report.Examples} examples in {report.Rows} rows, {steps} steps in {seconds:F2} s, " +
                              $"{perStep * steps / seconds:F0} supervised tokens/s, loss {report.Steps[0].Loss:F3} -> {report.Steps[^1].Loss:F3}");
        }
        Directory.Delete(folder, true);
        return Task.CompletedTask;
    }
}
