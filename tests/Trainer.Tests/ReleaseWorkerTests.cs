using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Pipeline.Bpe;
using Pipeline.Contracts.Checkpoints;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Model;
using Pipeline.Release;
using Pipeline.Runtime;
using Pipeline.Storage;
using static TorchSharp.torch;

namespace Pipeline.Trainer.Tests;

/// <summary>The trainer service's release jobs: a checkpoint quantized or written as GGUF by message, or by a rule.</summary>
public sealed class ReleaseWorkerTests : IDisposable
{
    private const string Source = "checkpoints/base/step-0000040";
    private readonly string _root = Directory.CreateTempSubdirectory("release-").FullName;

    /// <summary>A real tokenizer (the GGUF embeds it) and a small random model over it, saved as run "base", step 40.</summary>
    private TextTokenizer Fixture()
    {
        var texts = Enumerable.Range(0, 200).Select(i => $"Document {i}: the trainer releases checkpoint {i % 7} as int8 and as GGUF for llama.cpp. 学習した模型を量子化する {i}。").ToList();
        new BpeTrainer(400).Train(texts).Save(Path.Combine(_root, "tokenizers", "base"));
        var tokenizer = TextTokenizer.Load(Path.Combine(_root, "tokenizers", "base"));
        manual_seed(3);
        using var model = new Gpt(new GptConfig { VocabSize = tokenizer.VocabSize, Layers = 1, Heads = 2, Width = 64, Context = 16 });
        using (no_grad())
            foreach (var (_, p) in model.named_parameters()) p.copy_(randn_like(p) * 0.05);
        Checkpoints.Save(Path.Combine(_root, "checkpoints", "base"), model, null,
            new CheckpointInfo("base", 40, 0, tokenizer.Hash, null, new TrainingConfig { RunName = "base", Model = model.Config }), keepLast: 1);
        return tokenizer;
    }

    private IHost Host(params (string Key, string Value)[] settings)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value))
            .Append(KeyValuePair.Create("Pipeline:DataRoot", (string?)_root)));
        builder.Services.AddPipeline(builder.Configuration, [new TrainerModule()], bus =>
        {
            bus.AddConsumer<Recorder<CheckpointSaved>>();
            bus.AddConsumer<Recorder<ReleaseWritten>>();
        });
        return builder.Build();
    }

    /// <summary>Records what the host announces.</summary>
    public sealed class Recorder<T> : MassTransit.IConsumer<T> where T : class
    {
        public static readonly System.Collections.Concurrent.ConcurrentQueue<T> Seen = new();

        public Task Consume(MassTransit.ConsumeContext<T> context)
        {
            Seen.Enqueue(context.Message);
            return Task.CompletedTask;
        }
    }

    private static async Task<LedgerJob<ReleaseRequested>> WaitForEndAsync(Ledger ledger, string checkpoint, string target)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            if (ledger.Jobs.Get<ReleaseRequested>(JobKinds.Release, ReleaseWorker.JobName(checkpoint, target)) is { State: not JobState.Running } job) return job;
            Assert.True(DateTime.UtcNow < deadline, $"release {target} of {checkpoint} did not end");
            await Task.Delay(50);
        }
    }

    private static float[] Logits(Gpt model)
    {
        model.eval();
        using var _ = no_grad();
        using var logits = model.forward(tensor(new long[] { 1, 5, 9, 200, 17, 3 }, [1, 6]));
        return logits.data<float>().ToArray();
    }

    [Fact]
    public async Task Release_messages_quantize_a_checkpoint_and_write_its_GGUF_and_a_bad_one_fails_alone()
    {
        var tokenizer = Fixture();
        Recorder<CheckpointSaved>.Seen.Clear();
        Recorder<ReleaseWritten>.Seen.Clear();
        using var host = Host();
        await host.StartAsync();
        var bus = host.Services.GetRequiredService<MassTransit.IBus>();
        var ledger = host.Services.GetRequiredService<Ledger>();
        await bus.Publish(new ReleaseRequested(Source, "int3", "r"));
        await bus.Publish(new ReleaseRequested("checkpoints/none/step-0000001", "int8", "r"));
        await bus.Publish(new ReleaseRequested(Source, "int8", "r"));
        await bus.Publish(new ReleaseRequested(Source, "gguf:q8_0", "r"));

        // A hostile or mistaken request fails its own job, naming the problem; the service goes on with the others.
        Assert.Contains("int3", (await WaitForEndAsync(ledger, Source, "int3")).Error);
        Assert.Contains("checkpoints/none", (await WaitForEndAsync(ledger, "checkpoints/none/step-0000001", "int8")).Error);
        Assert.Equal(JobState.Completed, (await WaitForEndAsync(ledger, Source, "int8")).State);
        Assert.Equal(JobState.Completed, (await WaitForEndAsync(ledger, Source, "gguf:q8_0")).State);

        // The quantized copy: announced with its lineage, loaded as int8, close to the source but not equal to it.
        var saved = await WaitForAsync(() => Recorder<CheckpointSaved>.Seen.FirstOrDefault(c => c.RunName == "base-int8"));
        Assert.Equal(("checkpoints/base-int8/step-0000040", Source, CheckpointQuantizer.Method), (saved.Uri, saved.BaseCheckpoint, saved.Method));
        var (full, _) = Checkpoints.Load(Path.Combine(_root, Source), CPU);
        var (quantized, info) = Checkpoints.Load(Path.Combine(_root, saved.Uri), CPU);
        Assert.Equal(8, info.Quantization!.Bits);
        var (a, b) = (Logits(full), Logits(quantized));
        var worst = a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
        Assert.InRange(worst, 1e-6, 0.05);

        // The GGUF: committed whole at the announced URI with the announced checksum, and byte for byte the file
        // `pipeline export --format gguf` writes (which GgufTests loads in llama.cpp).
        var written = await WaitForAsync(() => Recorder<ReleaseWritten>.Seen.FirstOrDefault());
        Assert.Equal("releases/base/base-step-0000040-q8_0.gguf", written.Uri);
        var path = Path.Combine(_root, written.Uri);
        Assert.Equal((written.Sha256, written.Bytes), await ShardStore.HashFileAsync(path));
        using var expected = new MemoryStream();
        GgufExport.Write(full, Checkpoints.ReadInfo(Path.Combine(_root, Source)), tokenizer, expected, GgmlType.Q8_0);
        Assert.Equal(expected.ToArray(), await File.ReadAllBytesAsync(path));

        // Completed: a repeated request is not run again.
        Assert.NotNull(host.Services.GetRequiredService<ReleaseWorker>().TryStart(new ReleaseRequested(Source, "int8", "r")));
        await host.StopAsync();
    }

    [Fact]
    public async Task A_rule_releases_each_new_checkpoint_of_its_run()
    {
        Fixture();
        Recorder<CheckpointSaved>.Seen.Clear();
        using var host = Host(("Pipeline:Release:Rules:0:Run", "base"), ("Pipeline:Release:Rules:0:Targets:0", "int4"));
        await host.StartAsync();
        var store = host.Services.GetRequiredService<ShardStore>();
        var bus = host.Services.GetRequiredService<MassTransit.IBus>();
        await bus.Publish(await Checkpoints.SavedMessageAsync(store, "r", Path.Combine(_root, Source)));
        var job = await WaitForEndAsync(host.Services.GetRequiredService<Ledger>(), Source, "int4");
        Assert.Null(job.Error);
        var saved = await WaitForAsync(() => Recorder<CheckpointSaved>.Seen.FirstOrDefault(c => c.RunName == "base-int4"));
        Assert.Equal(4, Checkpoints.ReadInfo(Path.Combine(_root, saved.Uri)).Quantization!.Bits);
        await host.StopAsync();
    }

    [Theory]
    [InlineData("Pipeline:Release:Rules:0:Target:0", "int8", "Target")]       // misspelled: an error, not a rule that releases nothing
    [InlineData("Pipeline:Release:Rules:0:Targets:0", "gguf:q5_k", "q5_k")]
    [InlineData("Pipeline:Release:Rules:0:Targets:0", "int8/x", "'x'")]
    public void A_bad_rule_stops_the_service_with_an_error_naming_it(string key, string value, string named)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Pipeline:Release:Rules:0:Run"] = "base", [key] = value,
        }).Build();
        var error = Assert.ThrowsAny<Exception>(() => new TrainerModule().AddServices(new ServiceCollection(), configuration));
        Assert.Contains(named, error.Message);
        Assert.Contains("Pipeline:Release", error.Message);
    }

    [Fact]
    public void Targets_name_distinct_outputs()
    {
        string[] targets = ["int8", "int4", "int4/64", "int8/32", "gguf:f32", "gguf:f16", "gguf:q8_0", "gguf:q4_0"];
        var outputs = targets.Select(t => ReleaseTarget.Parse(t).Output("web", 500)).ToList();
        Assert.Equal(targets.Length, outputs.Distinct().Count());
        Assert.Equal("checkpoints/web-int4-g64/step-0000500", outputs[2]);
        Assert.Equal((4, 32), (ReleaseTarget.Parse("int4").Quantization!.Bits, ReleaseTarget.Parse("int4").Quantization!.GroupSize));
        Assert.Throws<ArgumentException>(() => ReleaseTarget.Parse("gguf"));
    }

    private static async Task<T> WaitForAsync<T>(Func<T?> probe) where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (probe() is { } found) return found;
            Assert.True(DateTime.UtcNow < deadline, $"no {typeof(T).Name} arrived");
            await Task.Delay(50);
        }
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
