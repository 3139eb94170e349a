using System.Globalization;
using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Pipeline.Bpe;
using Pipeline.Cleaner;
using Pipeline.Cli.Commands;
using Pipeline.Contracts;
using Pipeline.Contracts.Checkpoints;
using Pipeline.Contracts.Rows;
using Pipeline.Contracts.V1;
using Pipeline.Dedup;
using Pipeline.Evaluator;
using Pipeline.Evaluator.Tasks;
using Pipeline.Hosting;
using Pipeline.Model;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Tokenizer;
using Pipeline.Trainer;

namespace Pipeline.Cli;

/// <summary>One arm of an ablation: a name and the settings its data stages run with (a recipe, a quality threshold, semantic dedup on, ...).</summary>
public sealed record AblationArm(string Name, IReadOnlyDictionary<string, string?> Settings)
{
    /// <summary>"NAME" (the defaults) or "NAME:KEY=VALUE,KEY=VALUE" (recipe=X is short for Pipeline:Cleaner:Recipe=X).</summary>
    public static AblationArm Parse(string spec)
    {
        var colon = spec.IndexOf(':');
        var name = SafeName.Check(colon < 0 ? spec : spec[..colon], "--arm name");
        var settings = new Dictionary<string, string?>();
        if (colon >= 0)
            foreach (var pair in spec[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var eq = pair.IndexOf('=');
                if (eq <= 0) throw new ArgumentException($"--arm {spec}: '{pair}' is not KEY=VALUE");
                var key = pair[..eq] == "recipe" ? "Pipeline:Cleaner:Recipe" : pair[..eq];
                settings[key] = key == "Pipeline:Cleaner:Recipe" && pair[(eq + 1)..].EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? Path.GetFullPath(pair[(eq + 1)..]) : pair[(eq + 1)..];
            }
        return new AblationArm(name, settings);
    }
}

/// <summary>What `pipeline ablate` was asked to do.</summary>
public sealed record AblationOptions(string Name, IReadOnlyList<string> RawInputs, IReadOnlyList<AblationArm> Arms, string OutDir)
{
    public int Steps { get; init; } = 200;
    public int Seeds { get; init; } = 1;
    public int VocabSize { get; init; } = 2048;
    public IReadOnlyList<string> Tasks { get; init; } = [];
    /// <summary>A tokenizer folder every arm uses; null = one trained on the union of the arms' kept documents.</summary>
    public string? Tokenizer { get; init; }
}

/// <summary>One trained model of an arm, scored: per task its metrics and per-example values.</summary>
public sealed record AblationScore(string Arm, int Seed, string Checkpoint, Dictionary<string, Dictionary<string, double>> Metrics,
    Dictionary<string, Dictionary<string, IReadOnlyList<double>>> Samples, List<(long Step, double Loss)> Losses);

/// <summary>
/// An ablation (FineWeb's way of deciding a data choice): the same raw shards through each arm's data stages, one
/// tokenizer for all, and the same model, seeds, schedule and token budget for every arm; every model scored on the
/// same tasks and on one held-out text no arm trains on (a twentieth of the raw pages, by URL hash, never cleaned for
/// training). The report compares arms by paired bootstrap over the examples (and the seeds). Everything is recorded
/// under --out as it goes (ledger, shards, checkpoints, scores), so a killed ablation run again resumes.
/// </summary>
public static class Ablation
{
    /// <summary>The held-out share of the raw pages: 1 in this many, by a hash of the URL.</summary>
    private const int HeldOutOneIn = 20;

    public static string RunName(string ablation, string arm, int seed) => $"{ablation}-{arm}-s{seed}";

    public static async Task<string> RunAsync(AblationOptions options, ILogger logger, CancellationToken ct)
    {
        SafeName.Check(options.Name, "--name");
        if (options.Arms.Count < 2) throw new ArgumentException($"--arm: an ablation compares two or more arms ({options.Arms.Count} given)");
        if (options.Arms.GroupBy(a => a.Name).FirstOrDefault(g => g.Count() > 1) is { } twice) throw new ArgumentException($"--arm: '{twice.Key}' is named twice");
        if (options.Seeds is < 1 or > 16) throw new ArgumentException($"--seeds {options.Seeds}: between 1 and 16");
        if (options.Steps < 1) throw new ArgumentException($"--steps {options.Steps}: at least 1");
        foreach (var task in options.Tasks) TaskLoader.Load(task);
        var outDir = Path.GetFullPath(options.OutDir);
        var main = PipelineContext.Open(outDir);
        var store = main.Store;
        var folder = $"ablations/{options.Name}";

        // 1. The raw pages every arm starts from, without the held-out ones; the held-out text from those.
        var raw = await SplitRawAsync(main, options, folder, ct);
        var heldOutTask = Path.Combine(store.Resolve(folder), "heldout.yaml");
        File.WriteAllText(heldOutTask, $"name: {options.Name}_heldout\nversion: 1\ntype: perplexity\ndata: heldout.txt\n");

        // 2. Each arm's data stages, with its own settings (a bad key is an error naming it), under a run of its own.
        var kept = new Dictionary<string, IReadOnlyList<ShardRef>>();
        foreach (var arm in options.Arms)
        {
            var runId = $"{options.Name}-{arm.Name}";
            var context = PipelineContext.Open(outDir, arm.Settings);
            context.Ledger.Runs.Ensure(runId, runId, JsonSerializer.Serialize(arm.Settings));
            var cleaner = new ShardCleaner(context.Section<CleanerOptions>(CleanerOptions.Section), context.Store, context.Ledger);
            var cleaned = await StepAsync(context.Ledger, ShardCleaner.Stage, runId, raw, input => cleaner.ProcessAsync(input, ct), ct);
            using var deduplicator = new ShardDeduplicator(context.Section<DedupOptions>(DedupOptions.Section), context.Store, context.Ledger);
            var deduplicated = await StepAsync(context.Ledger, ShardDeduplicator.Stage, runId, cleaned, input => deduplicator.ProcessAsync(input, ct), ct);
            if (context.Section<SemanticDedupOptions>("Pipeline:SemanticDedup").ToSettings() is { } semantic
                && context.Ledger.Documents.Get(LedgerKeys.SemanticDuplicates(runId)) is null)
                await SemanticDedupStage.RunAsync(store, context.Ledger, logger, runId, deduplicated.Select(s => (s, store)).ToList(), semantic, ct);
            kept[arm.Name] = deduplicated;
            logger.LogInformation("ablate: arm {Arm}: {Documents} documents kept", arm.Name, deduplicated.Sum(s => s.Rows));
        }

        // 3. One tokenizer: given, or trained once on the union of what the arms kept.
        var corpus = new CorpusTokenizer(main.Section<TokenizerOptions>(TokenizerOptions.Section), store, main.Ledger);
        string tokenizerFolder;
        if (options.Tokenizer is { } given) tokenizerFolder = Path.GetFullPath(given);
        else if (main.Ledger.Documents.Get(LedgerKeys.Tokenizer(options.Name)) is { } recorded) tokenizerFolder = store.Resolve(JsonSerializer.Deserialize<string[]>(recorded)![0]);
        else
        {
            var (uri, hash, _) = await corpus.TrainAsync(options.Name, kept.Values.SelectMany(s => s).ToList(), options.VocabSize, ct);
            main.Ledger.Documents.Set(LedgerKeys.Tokenizer(options.Name), JsonSerializer.Serialize(new[] { uri, hash }));
            tokenizerFolder = store.Resolve(uri);
        }
        var tokenizer = TextTokenizer.Load(tokenizerFolder);

        // 4. Each arm tokenized with it; then the same model, schedule and token budget for every arm and seed.
        var scores = new List<AblationScore>();
        var manifests = new Dictionary<string, TokenManifest>();
        foreach (var arm in options.Arms)
        {
            var runId = $"{options.Name}-{arm.Name}";
            await StepAsync(main.Ledger, CorpusTokenizer.Stage, runId, kept[arm.Name], input => corpus.ProcessAsync(input, tokenizer, ct), ct);
            await corpus.WriteManifestAsync(runId, tokenizer, tokenizerFolder, ct);
            manifests[arm.Name] = await store.ReadTokenManifestAsync(RunArtifacts.TokenManifestUri(runId), ct);
            for (var seed = 1; seed <= options.Seeds; seed++)
                scores.Add(await TrainAndScoreAsync(main, options, arm.Name, runId, seed, tokenizer, [heldOutTask, .. options.Tasks], logger, ct));
        }

        // 5. The report.
        var sample = Config(options, "x", 1, tokenizer.VocabSize);
        var budget = (long)options.Steps * sample.BatchSize * sample.AccumulationSteps * sample.Model.Context;
        var arms = options.Arms.Select(a => new AblationReport.Arm(a.Name, a.Settings, kept[a.Name].Sum(s => s.Rows) - Excluded(main.Ledger, $"{options.Name}-{a.Name}"),
            manifests[a.Name].TrainTokens, budget / (double)Math.Max(1, manifests[a.Name].TrainTokens))).ToList();
        return AblationReport.Write(store.Resolve("reports"), options.Name, arms, scores, budget, $"{options.Name}_heldout");
    }

    private static long Excluded(Ledger ledger, string runId) =>
        ledger.Documents.Get(LedgerKeys.SemanticDuplicates(runId)) is { } json ? JsonSerializer.Deserialize<ExcludedDocuments>(json)!.Documents : 0;

    /// <summary>The sample model (as `pipeline run` trains it) with the ablation's steps and this seed.</summary>
    private static TrainingConfig Config(AblationOptions options, string runName, int seed, int vocabSize)
    {
        var config = EmbeddedRun.SampleTraining(runName, options.Steps);
        return config with { RunName = runName, Seed = seed, Model = config.Model with { VocabSize = vocabSize } };
    }

    private static async Task<AblationScore> TrainAndScoreAsync(PipelineContext main, AblationOptions options, string arm, string runId, int seed, TextTokenizer tokenizer,
        IReadOnlyList<string> tasks, ILogger logger, CancellationToken ct)
    {
        var store = main.Store;
        var runName = RunName(options.Name, arm, seed);
        var resultFile = store.Resolve($"ablations/{options.Name}/scores/{runName}.json");
        if (File.Exists(resultFile)) return JsonSerializer.Deserialize<AblationScore>(File.ReadAllText(resultFile), Json)!;
        var config = Config(options, runName, seed, tokenizer.VocabSize);
        var data = await TokenData.LoadAsync(store, RunArtifacts.TokenManifestUri(runId), tokenizer.Hash, config.Model.Context, ct);
        var runFolder = store.Resolve(Checkpoints.RunFolder(runName));
        // The loss of every step, kept in the ledger: a resumed training run adds the steps it had not done.
        var training = new TrainingRun(config, data, runFolder, logger)
        {
            OnStep = log =>
            {
                main.Ledger.Evaluations.AddMetric(runName, "train", log.Step, "loss", log.Loss);
                return Task.CompletedTask;
            },
        };
        await training.RunAsync(ct);
        ct.ThrowIfCancellationRequested();
        var checkpoint = Checkpoints.List(runFolder).Last();
        var (model, _) = Checkpoints.Load(checkpoint, TorchSharp.torch.CPU);
        var runner = new TaskRunner(model, tokenizer);
        var metrics = new Dictionary<string, Dictionary<string, double>>();
        var samples = new Dictionary<string, Dictionary<string, IReadOnlyList<double>>>();
        foreach (var file in tasks)
        {
            var task = TaskLoader.Load(file);
            metrics[task.Name] = (await runner.RunAsync(task, ct)).ToDictionary();
            samples[task.Name] = new Dictionary<string, IReadOnlyList<double>>(runner.Samples);
            logger.LogInformation("ablate: {Run}: {Task} {Metrics}", runName, task.Name, string.Join(", ", metrics[task.Name].Where(m => !m.Key.EndsWith("_stderr", StringComparison.Ordinal)).Select(m => $"{m.Key} {m.Value:G4}")));
        }
        var losses = main.Ledger.Evaluations.Metrics(runName, "train").Where(m => m.Name == "loss").Select(m => (m.Step, m.Value)).ToList();
        var score = new AblationScore(arm, seed, store.RelativeUri(checkpoint), metrics, samples, losses);
        AtomicWrite.Text(resultFile, JsonSerializer.Serialize(score, Json));
        return score;
    }

    private static readonly JsonSerializerOptions Json = new() { IncludeFields = true };

    /// <summary>A stage over shards under the arm's run: each input once (a rerun skips what the ledger says is done), outputs from the ledger.</summary>
    private static async Task<IReadOnlyList<ShardRef>> StepAsync(Ledger ledger, string stage, string runId, IReadOnlyList<ShardRef> inputs,
        Func<ShardRef, Task<StageResult>> process, CancellationToken ct)
    {
        var step = new ShardStep(ledger, stage);
        foreach (var input in inputs)
        {
            // The same raw shard goes through every arm: its id is made the arm's own, so each arm processes it once.
            var own = input with { RunId = runId, ShardId = input.RunId == runId ? input.ShardId : $"{runId}-{input.ShardId}" };
            await step.RunAsync(own, _ => process(own), null, ct);
        }
        return ledger.Artifacts.Shards(runId, stage);
    }

    /// <summary>
    /// The raw shards without the held-out pages (one in <see cref="HeldOutOneIn"/> by URL hash), written once for
    /// every arm, and the held-out pages' text (extracted, not filtered) as one text file.
    /// </summary>
    private static async Task<IReadOnlyList<ShardRef>> SplitRawAsync(PipelineContext main, AblationOptions options, string folder, CancellationToken ct)
    {
        var store = main.Store;
        var runId = $"{options.Name}-raw";
        var recorded = main.Ledger.Artifacts.Shards(runId, StageNames.Crawl);
        if (recorded.Count > 0 && File.Exists(store.Resolve($"{folder}/heldout.txt"))) return recorded;
        var heldOut = new StringBuilder();
        var shards = await CliInputs.ResolveAsync(options.RawInputs, runId, StageNames.Crawl, ct);
        main.Ledger.Runs.Ensure(runId, runId, "{}");
        var written = new List<ShardRef>();
        foreach (var (input, source) in shards.Select(s => (s.Ref, s.Store)))
        {
            var rows = new List<RawPage>();
            await foreach (var group in source.ReadRowGroupsAsync<RawPage>(input, ct))
                foreach (var page in group)
                {
                    if (XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(page.Url)) % HeldOutOneIn == 0)
                    {
                        var text = TextExtractor.Extract(page.Html).Text.Trim();
                        if (text.Length > 0) heldOut.Append(text.ReplaceLineEndings("\n")).Append("\n\n");
                    }
                    else rows.Add(page);
                }
            var id = $"{runId}-{input.ShardId}";
            var shard = await store.WriteParquetAsync($"shards/crawl/{runId}/{id}.parquet", rows, new ShardDescriptor(id, StageNames.Crawl, "held-out-1-in-20", [input.ShardId], runId), ct);
            main.Ledger.Artifacts.RecordShard(shard, null);
            written.Add(shard);
        }
        if (heldOut.Length == 0) throw new InvalidDataException($"{string.Join(", ", options.RawInputs)}: no page fell in the held-out twentieth; an ablation needs more raw pages");
        AtomicWrite.Text(store.Resolve($"{folder}/heldout.txt"), heldOut.ToString());
        return written;
    }
}
