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
    /// <summary>
    /// The services this process hosts for the training (names as for `pipeline serve`): by default a trainer on the
    /// in-memory bus; none, with Pipeline:Transport=RabbitMq, to have trainer services on other hosts train the arms.
    /// </summary>
    public IReadOnlyList<string> Services { get; init; } = ["trainer"];
    /// <summary>Configuration for the bus and the services (--set): the transport, the ledger, the object store.</summary>
    public IReadOnlyDictionary<string, string?> Settings { get; init; } = new Dictionary<string, string?>();
}

/// <summary>One trained model of an arm, scored: per task its metrics and per-example values.</summary>
public sealed record AblationScore(string Arm, int Seed, string Checkpoint, Dictionary<string, Dictionary<string, double>> Metrics,
    Dictionary<string, Dictionary<string, IReadOnlyList<double>>> Samples, List<(long Step, double Loss)> Losses);

/// <summary>
/// An ablation (FineWeb's way of deciding a data choice): the same raw shards through each arm's data stages, one
/// tokenizer for all, and the same model, seeds, schedule and token budget for every arm; every model scored on the
/// same tasks and on one held-out text no arm trains on (a twentieth of the raw pages, by URL hash, never cleaned for
/// training). Every model is an ordinary training run asked for by message (<see cref="TrainAsync"/>). The report
/// compares arms by paired bootstrap over the examples (and the seeds). Everything is recorded under --out as it goes
/// (ledger, shards, checkpoints, scores), so a killed ablation run again resumes.
/// </summary>
public static class Ablation
{
    /// <summary>The held-out share of the raw pages: 1 in this many, by a hash of the URL.</summary>
    private const int HeldOutOneIn = 20;

    /// <summary>The run an arm's data stages and token shards are recorded under.</summary>
    public static string ArmRun(string ablation, string arm) => $"{ablation}-{arm}";

    /// <summary>The training run of an arm and seed.</summary>
    public static string RunName(string ablation, string arm, int seed) => $"{ArmRun(ablation, arm)}-s{seed}";

    public static async Task<string> RunAsync(AblationOptions options, ILogger logger, CancellationToken ct)
    {
        SafeName.Check(options.Name, "--name");
        if (options.Arms.Count < 2) throw new ArgumentException($"--arm: an ablation compares two or more arms ({options.Arms.Count} given)");
        if (options.Arms.GroupBy(a => a.Name).FirstOrDefault(g => g.Count() > 1) is { } twice) throw new ArgumentException($"--arm: '{twice.Key}' is named twice");
        if (options.Seeds is < 1 or > 16) throw new ArgumentException($"--seeds {options.Seeds}: between 1 and 16");
        if (options.Steps < 1) throw new ArgumentException($"--steps {options.Steps}: at least 1");
        foreach (var task in options.Tasks) TaskLoader.Load(task);
        var outDir = Path.GetFullPath(options.OutDir);
        var main = PipelineContext.Open(outDir, options.Settings);
        var store = main.Store;
        var folder = $"ablations/{options.Name}";
        CheckResume(store.Resolve($"{folder}/options.json"), options);

        // 1. The raw pages every arm starts from, without the held-out ones; the held-out text from those.
        var raw = await SplitRawAsync(main, options, folder, ct);
        var heldOutTask = Path.Combine(store.Resolve(folder), "heldout.yaml");
        File.WriteAllText(heldOutTask, $"name: {options.Name}_heldout\nversion: 1\ntype: perplexity\ndata: heldout.txt\n");

        // 2. Each arm's data stages, with its own settings (a bad key is an error naming it), under a run of its own.
        var kept = new Dictionary<string, IReadOnlyList<ShardRef>>();
        foreach (var arm in options.Arms)
        {
            var runId = ArmRun(options.Name, arm.Name);
            var context = PipelineContext.Open(outDir, options.Settings.Concat(arm.Settings).GroupBy(kv => kv.Key).ToDictionary(g => g.Key, g => g.Last().Value));
            context.Ledger.Runs.Ensure(runId, runId, JsonSerializer.Serialize(arm.Settings));
            var cleaner = new ShardCleaner(context.Section<CleanerOptions>(CleanerOptions.Section), context.Store, context.Ledger);
            var cleaned = await StepAsync(context.Ledger, ShardCleaner.Stage, runId, raw, input => cleaner.ProcessAsync(input, ct), ct);
            using var deduplicator = new ShardDeduplicator(context.Section<DedupOptions>(DedupOptions.Section), context.Store, context.Ledger);
            var deduplicated = await StepAsync(context.Ledger, ShardDeduplicator.Stage, runId, cleaned, input => deduplicator.ProcessAsync(input, ct), ct);
            if (context.Section<SemanticDedupOptions>("Pipeline:SemanticDedup").ToSettings() is { } semantic
                && context.Ledger.Documents.Get(LedgerKeys.SemanticDuplicates(runId)) is null)
            {
                using var source = new EmbeddingSource(store, context.Ledger, semantic.Checkpoint);
                await SemanticDedupStage.RunAsync(store, context.Ledger, logger, runId, deduplicated.Select(s => (s, store)).ToList(), semantic, (await source.GetAsync(ct)).Embed, ct);
            }
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
            var runId = ArmRun(options.Name, arm.Name);
            await StepAsync(main.Ledger, CorpusTokenizer.Stage, runId, kept[arm.Name], input => corpus.ProcessAsync(input, tokenizer, ct), ct);
            await corpus.WriteManifestAsync(runId, tokenizer, tokenizerFolder, ct);
            manifests[arm.Name] = await store.ReadTokenManifestAsync(RunArtifacts.TokenManifestUri(runId), ct);
        }
        await store.PublishFolderAsync("shards", ct);
        await store.PublishFolderAsync("tokenizers", ct);
        var models = options.Arms.SelectMany(a => Enumerable.Range(1, options.Seeds).Select(seed => (Arm: a.Name, Seed: seed))).ToList();
        await TrainAsync(options, outDir, main.Ledger, models, tokenizer.VocabSize, logger, ct);
        foreach (var (arm, seed) in models)
            scores.Add(await ScoreAsync(main, options, arm, seed, tokenizer, [heldOutTask, .. options.Tasks], logger, ct));

        // 5. The report.
        var sample = Config(options, "x", 1, tokenizer.VocabSize);
        var budget = (long)options.Steps * sample.BatchSize * sample.AccumulationSteps * sample.Model.Context;
        var arms = options.Arms.Select(a => new AblationArmSummary(a.Name, a.Settings, kept[a.Name].Sum(s => s.Rows) - Excluded(main.Ledger, ArmRun(options.Name, a.Name)),
            manifests[a.Name].TrainTokens, budget / (double)Math.Max(1, manifests[a.Name].TrainTokens))).ToList();
        var (report, summary) = AblationReport.Write(store.Resolve("reports"), options.Name, arms, scores, budget, $"{options.Name}_heldout");
        main.Ledger.Documents.Set(LedgerKeys.Ablation(options.Name), JsonSerializer.Serialize(summary));
        await store.PublishFolderAsync("reports", ct);
        return report;
    }

    /// <summary>
    /// An ablation run again must be the same ablation: its shards, models and scores are reused by name. Anything else
    /// (an arm's settings, the steps, the seeds, the tasks) is refused, naming what changed, before any work.
    /// </summary>
    private static void CheckResume(string path, AblationOptions options)
    {
        var now = new
        {
            Arms = options.Arms.Select(a => new { a.Name, Settings = a.Settings.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary() }),
            options.Steps, options.Seeds, options.VocabSize, options.Tokenizer, Tasks = options.Tasks.Select(Path.GetFileName).ToList(),
        };
        if (File.Exists(path) && RunSettings.Differences(File.ReadAllText(path), now) is { Count: > 0 } changed)
            throw new ArgumentException($"ablation '{options.Name}' was started with other options ({string.Join("; ", changed)}); run it again with the same ones to resume, or give another --name");
        AtomicWrite.Text(path, JsonSerializer.Serialize(now));
    }

    private static long Excluded(Ledger ledger, string runId) =>
        ledger.Documents.Get(LedgerKeys.SemanticDuplicates(runId)) is { } json ? JsonSerializer.Deserialize<ExcludedDocuments>(json)!.Documents : 0;

    /// <summary>The sample model (as `pipeline run` trains it) with the ablation's steps and this seed.</summary>
    private static TrainingConfig Config(AblationOptions options, string runName, int seed, int vocabSize)
    {
        var config = EmbeddedRun.SampleTraining(runName, options.Steps);
        return config with { RunName = runName, Seed = seed, Model = config.Model with { VocabSize = vocabSize } };
    }

    /// <summary>
    /// Every arm and seed trained as an ordinary run: a StartTraining message each, all at once, so they train in
    /// parallel on as many trainer services as there are (here by default, one in this process); finished when the
    /// ledger says each run completed. A run completed before is not asked for again; one a killed ablation left
    /// running is resumed by the trainer service as it starts, from its last checkpoint.
    /// </summary>
    private static async Task TrainAsync(AblationOptions options, string outDir, Ledger ledger, IReadOnlyList<(string Arm, int Seed)> models, int vocabSize,
        ILogger logger, CancellationToken ct)
    {
        var settings = new Dictionary<string, string?>(options.Settings) { ["Pipeline:DataRoot"] = outDir };
        var modules = options.Services.SelectMany(Stages.ForService).Distinct().ToList();
        using var host = PipelineHost.Build(modules, settings, quiet: true);
        await host.StartCheckedAsync("ablate", ct);
        try
        {
            LedgerJob<StartTraining>? Job(string runName) => ledger.Jobs.Get<StartTraining>(JobKinds.Training, runName);
            var runs = models.Select(m => (RunName: RunName(options.Name, m.Arm, m.Seed), RunId: ArmRun(options.Name, m.Arm), m.Seed)).ToList();
            foreach (var run in runs.Where(r => Job(r.RunName) is null or { State: JobState.Failed or JobState.Cancelled }))
                await host.Bus().Publish(new StartTraining(run.RunId, run.RunName, RunArtifacts.TokenManifestUri(run.RunId),
                    JsonSerializer.Serialize(Config(options, run.RunName, run.Seed, vocabSize))), ct);
            var reported = DateTime.MinValue;
            while (true)
            {
                // Each run's job read once a round.
                var jobs = runs.Select(r => (r.RunName, Job: Job(r.RunName))).ToList();
                if (jobs.FirstOrDefault(r => r.Job?.State == JobState.Failed) is { Job: not null } failed)
                    throw new InvalidOperationException($"ablation {options.Name}: training {failed.RunName} failed: {failed.Job.Error}");
                if (jobs.All(r => r.Job?.State == JobState.Completed)) break;
                if (DateTime.UtcNow - reported > TimeSpan.FromSeconds(10))
                {
                    reported = DateTime.UtcNow;
                    logger.LogInformation("ablate: training {Runs}", string.Join(", ", runs.Select(r =>
                        $"{r.RunName} {(ledger.Evaluations.Metrics(r.RunName, "train") is { Count: > 0 } m ? m.Max(x => x.Step) : 0)}/{options.Steps}")));
                }
                await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
            }
        }
        finally
        {
            // After a signal too: the trainer stops its runs at a checkpoint within this bound.
            using var shutdown = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await host.StopAsync(shutdown.Token);
        }
    }

    /// <summary>A trained model's scores on the held-out text and the tasks, with every example's value; kept in ablations/&lt;name&gt;/scores.</summary>
    private static async Task<AblationScore> ScoreAsync(PipelineContext main, AblationOptions options, string arm, int seed, TextTokenizer tokenizer,
        IReadOnlyList<string> tasks, ILogger logger, CancellationToken ct)
    {
        var store = main.Store;
        var runName = RunName(options.Name, arm, seed);
        var resultFile = store.Resolve($"ablations/{options.Name}/scores/{runName}.json");
        if (File.Exists(resultFile)) return JsonSerializer.Deserialize<AblationScore>(File.ReadAllText(resultFile), Json)!;
        var checkpoint = await store.FetchFolderAsync((await Checkpoints.ListAsync(store, Checkpoints.RunFolder(runName), ct)).Last(), ct);
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
        // Not ArmRun's shape: an arm name starts with a letter or digit, so no arm (not even one named "raw") shares it.
        var runId = $"{options.Name}-_raw";
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
