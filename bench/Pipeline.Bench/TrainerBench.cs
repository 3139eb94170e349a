using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Model;
using Pipeline.Trainer;
using TorchSharp;
using static TorchSharp.torch;
using Pipeline.Contracts.Rows;
using Pipeline.Runtime;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Bench;

/// <summary>
/// CPU training speed, side by side in one process: a bare TorchSharp loop (random tokens, AdamW, no data loading)
/// and the trainer's TrainingRun reading a real token stream with logging, validation and checkpoints. Model of the
/// issue: 4 layers, 4 heads, 128 wide, context 256, batch 12, vocab 4096, 2 threads. The service reads real token
/// shards: the benchmark corpus (bench/build-corpus.py) tokenized with a 4,096-token BPE into Parquet token shards and a
/// manifest. Arguments: data folder, steps.
/// </summary>
public static class TrainerBench
{
    private static readonly GptConfig Shape = new() { VocabSize = 4096, Layers = 4, Heads = 4, Width = 128, Context = 256 };

    public static async Task RunAsync(string[] args)
    {
        var folder = args.Length > 0 ? args[0] : "bench/data";
        var steps = args.Length > 1 ? int.Parse(args[1]) : 60;
        set_num_threads(2);
        var data = await RealTokensAsync(folder);
        var bareBefore = Bare(steps);
        var config = new TrainingConfig
        {
            RunName = "bench", Model = Shape with { VocabSize = Math.Max(Shape.VocabSize, data.Train.Max() + 1) }, BatchSize = 12, MaxSteps = steps + 10,
            WarmupSteps = 5, LogEvery = 10, EvalEvery = 25, EvalBatches = 2, CheckpointEvery = 25, Threads = 2, Device = "cpu",
        };
        var service = await ServiceAsync(config, data);
        // The bare loop runs before and after the service; their mean is the reference (the machine's speed drifts).
        var bareAfter = Bare(steps);
        var bare = (bareBefore + bareAfter) / 2;
        Console.WriteLine($"trainer: model {config.Model.Parameters():N0} parameters; bare loop {bare:F0} tokens/s ({bareBefore:F0} before, {bareAfter:F0} after); trainer service {service:F0} tokens/s " +
                          $"(with logging, validation every 25 and checkpoints every 25 steps) = {100 * service / bare:F1}% of bare; {steps} steps each, 2 threads");
        var variants = config with { MaxSteps = 30 };
        var checkpointing = await ServiceAsync(variants with { ActivationCheckpointing = true }, data);
        var bf16 = await ServiceAsync(variants with { Precision = Precision.Bf16 }, data);
        Console.WriteLine($"trainer: with activation checkpointing {checkpointing:F0} tokens/s ({100 * checkpointing / service:F1}% of the service); " +
                          $"bf16 compute + fp32 master on this CPU {bf16:F0} tokens/s ({100 * bf16 / service:F1}%); 30 steps each");
    }

    /// <summary>Tokens/s of a TrainingRun, timed from the first logged step after warm-up (step 5 on) to the last.</summary>
    private static async Task<double> ServiceAsync(TrainingConfig config, TokenData data)
    {
        var runFolder = Directory.CreateTempSubdirectory("trainer-bench-").FullName;
        var watch = new Stopwatch();
        long firstStep = 0, lastStep = 0;
        var run = new TrainingRun(config, data, runFolder, NullLogger.Instance)
        {
            OnStep = log =>
            {
                // Timed from the first logged step after warm-up to the last one, as the bare loop skips 5 steps.
                if (firstStep == 0 && log.Step >= 5)
                {
                    firstStep = log.Step;
                    watch.Start();
                }
                lastStep = log.Step;
                return Task.CompletedTask;
            },
        };
        await run.RunAsync(default);
        Directory.Delete(runFolder, true);
        return (double)(lastStep - firstStep) * config.BatchSize * config.Model.Context / watch.Elapsed.TotalSeconds;
    }

    /// <summary>Tokenizes the corpus into token shards with a 4,096-token vocabulary and loads them as the trainer does.</summary>
    private static async Task<TokenData> RealTokensAsync(string folder)
    {
        var root = Path.Combine(folder, "trainer-bench");
        var store = new Storage.ShardStore(root);
        var ledger = new Runtime.Ledger(Path.Combine(root, "ledger.db"));
        var corpus = new Tokenizer.CorpusTokenizer(new Tokenizer.TokenizerOptions(), store, ledger);
        if (!File.Exists(store.Resolve(Runtime.RunArtifacts.TokenManifestUri("bench"))))
        {
            var lines = File.ReadAllLines(Path.Combine(folder, "corpus.txt"));
            var docs = lines.Chunk(20).Select((c, i) => new CleanDocument { Id = $"d{i}", Text = string.Join('\n', c), Language = "" }).ToList();
            var input = await store.WriteParquetAsync("dedup/bench.parquet", docs, new Storage.ShardDescriptor("bench-dedup", "dedup", "", [], "bench"));
            var (uri, _, _) = await corpus.TrainAsync("bench", [input], 4096, default);
            var tokenizer = Bpe.TextTokenizer.Load(store.Resolve(uri));
            var result = await corpus.ProcessAsync(input, tokenizer, default);
            ledger.Artifacts.CompleteInput(Tokenizer.CorpusTokenizer.Stage, input.ShardId, "bench", result.Outputs, result.Stats);
            await corpus.WriteManifestAsync("bench", tokenizer, uri);
        }
        return await TokenData.LoadAsync(store, Runtime.RunArtifacts.TokenManifestUri("bench"), null, Shape.Context);
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
