using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Pipeline.Alignment;
using Pipeline.Crawler;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Model;
using Pipeline.Storage;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Cli;

/// <summary>What `pipeline run` was asked to do.</summary>
public sealed record EmbeddedRunOptions
{
    public required string OutDir { get; init; }
    public IReadOnlyList<string> Seeds { get; init; } = [];
    /// <summary>Folder served on loopback and crawled when no seed is given (default: the shipped sample site).</summary>
    public string? SiteFolder { get; init; }
    public int MaxPages { get; init; } = 400;
    /// <summary>Jobs the crawl is split into by host (<see cref="RunRequest.CrawlParts"/>).</summary>
    public int CrawlParts { get; init; } = 1;
    public int VocabSize { get; init; } = 2048;
    public int Steps { get; init; } = 300;
    /// <summary>The run's name (--run); null = the one this --out folder started, or a new one from the folder's name (<see cref="RunNames"/>).</summary>
    public string? RunId { get; init; }
    /// <summary>Called with the run's name before anything else is printed.</summary>
    public Action<string>? OnRunName { get; init; }
    public bool Quiet { get; init; }
    /// <summary>Further configuration (for example Pipeline:Transport=RabbitMq to run the same chain over a broker).</summary>
    public IReadOnlyDictionary<string, string?> Settings { get; init; } = new Dictionary<string, string?>();
    public Action<string>? OnPhase { get; init; }
    /// <summary>Task files scored on every checkpoint; null = the shipped tasks/*.yaml when found.</summary>
    public IReadOnlyList<string>? EvalTasks { get; init; }
    /// <summary>
    /// The services this process hosts (names as for `pipeline serve`); null = all of them. With none, the run only
    /// coordinates: over RabbitMQ, services started elsewhere with `pipeline serve` on the same data root do the work.
    /// </summary>
    public IReadOnlyList<string>? HostedServices { get; init; }
    /// <summary>SFT data (JSONL or Parquet) for a LoRA fine-tune of the final checkpoint; null = the shipped samples/alignment/sft-ja.jsonl when found, "" = none.</summary>
    public string? SftData { get; init; }
    /// <summary>The alignment phase's methods in order (<see cref="AlignmentPlan"/>: e.g. sft; sft, reward, ppo; grpo); null = sft, empty = none.</summary>
    public IReadOnlyList<string>? Align { get; init; }
    /// <summary>Targets the final checkpoint is released as (<see cref="Release.ReleaseTarget"/>: int8, int4, gguf:q8_0, ...); empty = none.</summary>
    public IReadOnlyList<string> Release { get; init; } = [];
    /// <summary>The coordinator's re-check of the ledger when no event arrives (<see cref="RunCoordinator.Recheck"/>); null = its default.</summary>
    public TimeSpan? Recheck { get; init; }
    /// <summary>How long the coordinator waits with nothing moving before it announces again what was not taken (<see cref="RunCoordinator.Reconcile"/>); null = its default.</summary>
    public TimeSpan? Reconcile { get; init; }
}

/// <summary>
/// The whole chain in one process: every stage hosted together, the run driven by the <see cref="RunCoordinator"/>,
/// and a report at the end. Running it again with the same output folder resumes.
/// </summary>
public static class EmbeddedRun
{
    public static async Task<string> RunAsync(EmbeddedRunOptions options, CancellationToken ct)
    {
        Validate(options);
        var outDir = Path.GetFullPath(options.OutDir);
        var seeds = options.Seeds;
        // No transport here: the in-memory bus is the default, and pipeline.json, PIPELINE__TRANSPORT or --set choose
        // another (a coordinating run must reach the services' broker).
        var settings = new Dictionary<string, string?>
        {
            ["Pipeline:DataRoot"] = outDir,
            ["Pipeline:Stages:cleaner:ConcurrentMessageLimit"] = "2",
        };
        StaticSite? site = null;
        if (seeds.Count == 0)
        {
            site = await ServeSampleAsync(options, outDir);
            seeds = [site.Address.ToString()];
            foreach (var (key, value) in SampleCrawlSettings(site.Address)) settings[key] = value;
        }
        var tasks = options.EvalTasks ?? SampleSite.ShippedTasks();
        // Read now, so a missing or malformed task file fails the run before the crawl, not after training.
        foreach (var task in tasks) Evaluator.Tasks.TaskLoader.Load(task);
        for (var i = 0; i < tasks.Count; i++) settings[$"Pipeline:Evaluator:Tasks:{i}"] = tasks[i];
        foreach (var (key, value) in options.Settings) settings[key] = value;
        await using var _ = site;
        var modules = options.HostedServices is null ? Stages.All : options.HostedServices.SelectMany(Stages.ForService).Distinct().ToList();
        // On a terminal the live table shows progress, so the log keeps to warnings.
        using var host = PipelineHost.Build(modules, settings, options.Quiet || Commands.StageProgress.Interactive, coordinatesRuns: true);
        if (modules.Count == 0 && host.Services.GetRequiredService<PipelineOptions>().Transport == TransportKind.InMemory)
            throw new ArgumentException("--services none: this process would host no service on its own in-memory bus, so nothing would do the work; " +
                "set Pipeline:Transport=RabbitMq (PIPELINE__TRANSPORT or --set) to coordinate services started with `pipeline serve`");
        await host.StartCheckedAsync("run", ct);
        try
        {
            var ledger = host.Services.GetRequiredService<Ledger>();
            var store = host.Services.GetRequiredService<ShardStore>();
            var runId = RunNames.Resolve(options.RunId, outDir, ledger);
            options.OnRunName?.Invoke(runId);
            var training = SampleTraining(runId, options.Steps);
            var plan = AlignmentPlan.Build(options, training, outDir);
            foreach (var uri in plan.DataUris) await store.PublishFileAsync(uri, ct);
            var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("run");
            var pipelineOptions = host.Services.GetRequiredService<PipelineOptions>();
            var request = new RunRequest(runId, seeds, options.MaxPages, options.VocabSize, training, plan.Alignment, tasks, pipelineOptions.Decontaminate.Remove,
                options.CrawlParts, options.Release, plan.RewardModel, plan.Reinforcement, pipelineOptions.SemanticDedup.ToSettings());
            var display = new RunProgressDisplay(new RunProgress(ledger, runId, training.RunName, options.MaxPages, training.MaxSteps, request.DerivedRuns), options.OutDir);
            var coordinator = new RunCoordinator(host.Bus(), ledger, store, host.Services.GetRequiredService<RunFaults>(),
                host.Services.GetRequiredService<RunSignals>(), logger)
            {
                Recheck = options.Recheck ?? TimeSpan.FromSeconds(2),
                Reconcile = options.Reconcile ?? TimeSpan.FromSeconds(30),
                OnPhase = phase =>
                {
                    display.SetPhase(phase);
                    options.OnPhase?.Invoke(phase);
                },
            };
            await display.RunAsync(() => coordinator.RunAsync(request, ct));
            var report = RunReport.Write(ledger, runId, training.RunName, store.Resolve("reports"), request.DerivedRuns);
            await store.PublishFolderAsync("reports", ct);
            return report;
        }
        finally
        {
            // Also after a signal: the services stop their jobs (training saves its current step) within this bound.
            using var shutdown = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await host.StopAsync(shutdown.Token);
        }
    }

    /// <summary>
    /// How the crawler may reach the sample site it serves on loopback: exactly that server, its address and (by
    /// prefix) its port, never another local service; and fast (no politeness delay against our own server).
    /// </summary>
    public static IReadOnlyDictionary<string, string> SampleCrawlSettings(Uri site) => new Dictionary<string, string>
    {
        ["Pipeline:Crawler:AllowedAddressRanges:0"] = $"{site.Host}/32",
        ["Pipeline:Crawler:AllowedPrefixes:0"] = site.GetLeftPart(UriPartial.Authority) + "/",
        ["Pipeline:Crawler:PerHostConcurrency"] = "4",
        ["Pipeline:Crawler:PerHostDelay"] = "00:00:00",
        ["Pipeline:Crawler:PagesPerShard"] = "100",
    };

    /// <summary>Arguments are checked before anything starts: a run that cannot succeed fails at once, naming the flag.</summary>
    private static void Validate(EmbeddedRunOptions options)
    {
        if (options.Steps < 1) throw new ArgumentException($"--steps {options.Steps}: the sample model needs at least 1 training step");
        if (options.MaxPages < 1) throw new ArgumentException($"--max-pages {options.MaxPages}: the crawl needs at least 1 page");
        if (options.CrawlParts < 1 || options.CrawlParts > options.MaxPages)
            throw new ArgumentException($"--crawl-parts {options.CrawlParts}: must be between 1 and --max-pages ({options.MaxPages})");
        if (options.VocabSize < Bpe.BpeTrainer.MinimumVocabSize)
            throw new ArgumentException($"--vocab {options.VocabSize}: a byte-level vocabulary needs at least {Bpe.BpeTrainer.MinimumVocabSize} tokens (256 bytes + special tokens)");
        Release.ReleaseTarget.CheckAll(options.Release, "--release");
        AlignmentPlan.Parse(options.Align ?? AlignmentPlan.Default);
    }

    /// <summary>
    /// Serves the sample site, on the same port as the first attempt of this run: the crawl frontier holds URLs with
    /// that port, and a resumed crawl must find them again rather than start over on a new address.
    /// </summary>
    private static async Task<StaticSite> ServeSampleAsync(EmbeddedRunOptions options, string outDir)
    {
        var folder = options.SiteFolder ?? SampleSite.Folder();
        var portFile = Path.Combine(outDir, "sample-site.port");
        if (File.Exists(portFile) && int.TryParse(File.ReadAllText(portFile), out var port))
        {
            try
            {
                return await StaticSite.StartAsync(folder, port: port);
            }
            catch (IOException e)
            {
                throw new InvalidOperationException(
                    $"this run crawled the sample site on port {port}, which is now in use ({e.Message}); free it to resume, or start a new run with another --out", e);
            }
        }
        var site = await StaticSite.StartAsync(folder);
        Directory.CreateDirectory(outDir);
        File.WriteAllText(portFile, site.Address.Port.ToString());
        return site;
    }

    /// <summary>The small model the sample run trains: 2 layers, 128 wide, context 128 (minutes on 2 CPU cores).</summary>
    public static TrainingConfig SampleTraining(string runId, int steps) => new()
    {
        RunName = $"{runId}-gpt",
        Model = new GptConfig { Layers = 2, Heads = 4, Width = 128, Context = 128 },
        BatchSize = 8,
        MaxSteps = steps,
        WarmupSteps = Math.Min(20, Math.Max(1, steps / 5)),
        EvalEvery = Math.Min(100, Math.Max(1, steps / 3)),
        CheckpointEvery = Math.Min(100, Math.Max(1, steps / 3)),
        LogEvery = Math.Min(25, steps),
    };
}

/// <summary>
/// How `pipeline run` names a run, so that any number of runs share one ledger, bucket and broker: --run NAME, or the
/// name this --out folder started before (resuming), or a new name from the folder's own name (runs/sample: sample),
/// with -2, -3 ... added while the ledger already holds a run of that name that this folder did not start.
/// </summary>
public static class RunNames
{
    private const string FileName = "run-name";

    public static string Resolve(string? requested, string outDir, Ledger ledger)
    {
        var file = Path.Combine(outDir, FileName);
        var recorded = File.Exists(file) ? File.ReadAllText(file).Trim() : null;
        string name;
        if (requested is not null) name = SafeName.Check(requested, "--run");
        else if (!string.IsNullOrEmpty(recorded)) name = recorded;
        else
        {
            var stem = FromFolder(outDir);
            name = stem;
            for (var n = 2; ledger.Runs.Config(name) is not null; n++) name = $"{stem}-{n}";
        }
        if (recorded != name)
        {
            Directory.CreateDirectory(outDir);
            File.WriteAllText(file, name);
        }
        return name;
    }

    /// <summary>The folder's name made a valid run name (letters, digits, '.', '_', '-'), or "run".</summary>
    private static string FromFolder(string outDir)
    {
        var leaf = Path.GetFileName(Path.TrimEndingDirectorySeparator(outDir));
        var cleaned = new string(leaf.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-').ToArray()).TrimStart('.', '_', '-');
        if (cleaned.Length > 100) cleaned = cleaned[..100];
        return cleaned.Length == 0 ? "run" : cleaned;
    }
}
