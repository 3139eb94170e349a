using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Model;
using Pipeline.Trainer;
using TorchSharp;
using static TorchSharp.torch;

namespace Pipeline.Bench;

/// <summary>
/// CPU training speed, side by side in one process: a bare TorchSharp loop (random tokens, AdamW, no data loading)
/// and the trainer's TrainingRun reading a real token stream with logging, validation and checkpoints. Model of the
/// issue: 4 layers, 4 heads, 128 wide, context 256, batch 12, vocab 4096, 2 threads. Arguments: token manifest data
/// root and URI (optional; else the corpus is random), steps.
/// </summary>
public static class TrainerBench
{
    private static readonly GptConfig Shape = new() { VocabSize = 4096, Layers = 4, Heads = 4, Width = 128, Context = 256 };

    public static async Task RunAsync(string[] args)
    {
        var steps = args.Length > 2 ? int.Parse(args[2]) : 60;
        set_num_threads(2);
        var bare = Bare(steps);
        TokenData data;
        if (args.Length > 1)
        {
            data = await TokenData.LoadAsync(new Storage.ShardStore(args[0]), args[1], null, Shape.Context);
        }
        else
        {
            var random = new Random(1);
            var tokens = Enumerable.Range(0, 2_000_000).Select(_ => random.Next(Shape.VocabSize)).ToArray();
            data = TokenData.FromTokens(tokens[..1_900_000], tokens[1_900_000..], "random");
        }
        var config = new TrainingConfig
        {
            RunName = "bench", Model = Shape with { VocabSize = Math.Max(Shape.VocabSize, data.Train.Max() + 1) }, BatchSize = 12, MaxSteps = steps + 5,
            WarmupSteps = 5, LogEvery = 10, EvalEvery = 25, EvalBatches = 2, CheckpointEvery = 25, Threads = 2, Device = "cpu",
        };
        var folder = Directory.CreateTempSubdirectory("trainer-bench-").FullName;
        var times = new List<(long Step, double Seconds)>();
        var watch = new Stopwatch();
        var run = new TrainingRun(config, data, folder, NullLogger.Instance)
        {
            OnStep = log =>
            {
                if (log.Step == 5) watch.Start(); // skip warm-up steps, as for the bare loop
                times.Add((log.Step, watch.Elapsed.TotalSeconds));
                return Task.CompletedTask;
            },
        };
        await run.RunAsync(default);
        var seconds = watch.Elapsed.TotalSeconds;
        var service = (double)steps * config.BatchSize * config.Model.Context / seconds;
        Console.WriteLine($"trainer: model {config.Model.Parameters():N0} parameters; bare loop {bare:F0} tokens/s; trainer service {service:F0} tokens/s " +
                          $"(with logging, validation every 25 and checkpoints every 25 steps) = {100 * service / bare:F1}% of bare; {steps} steps each, 2 threads");
        Directory.Delete(folder, true);
    }

    private static double Bare(int steps)
    {
        manual_seed(1);
        var model = new Gpt(Shape, CPU);
        var optimizer = optim.AdamW(model.parameters(), lr: 1e-3, weight_decay: 0.1);
        var random = new Random(1);
        double seconds = 0;
        for (var step = 0; step < steps + 5; step++)
        {
            var watch = Stopwatch.StartNew();
            using var scope = NewDisposeScope();
            var x = randint(0, Shape.VocabSize, [12, Shape.Context], dtype: int64);
            var y = randint(0, Shape.VocabSize, [12, Shape.Context], dtype: int64);
            optimizer.zero_grad();
            var loss = model.Loss(x, y);
            loss.backward();
            nn.utils.clip_grad_norm_(model.parameters(), 1.0);
            optimizer.step();
            loss.item<float>();
            if (step >= 5) seconds += watch.Elapsed.TotalSeconds;
        }
        return steps * 12.0 * Shape.Context / seconds;
    }
}
