using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using System.Text.Json;
using Pipeline.Runtime;

namespace Pipeline.Cli.Tests;

/// <summary>The same small chain (crawl of the shipped sample site to evaluation), in memory and over RabbitMQ.</summary>
[Collection("end-to-end")]
public sealed class EndToEndTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("e2e-").FullName;
    private readonly RabbitMqBroker _broker = new();

    internal static EmbeddedRunOptions SmallRun(string outDir) => new()
    {
        OutDir = outDir,
        RunId = "sample",
        MaxPages = 80,
        VocabSize = 400,
        Steps = 10,
        EvalTasks = [],
        Quiet = Environment.GetEnvironmentVariable("PIPELINE_TEST_VERBOSE") is null,
    };

    private static readonly SemaphoreSlim SmallRunGate = new(1);
    private static RunAssertions.Outcome? _smallRun;

    /// <summary>
    /// What the embedded run of <see cref="SmallRun"/> gives (one process, one folder, SQLite): the figures other
    /// deployments of the same run must reach. Taken from the in-memory test when it ran first, else run here.
    /// </summary>
    internal static async Task<RunAssertions.Outcome> SmallRunOutcomeAsync()
    {
        await SmallRunGate.WaitAsync();
        try
        {
            if (_smallRun is not null) return _smallRun;
            var folder = Directory.CreateTempSubdirectory("e2e-reference-").FullName;
            try
            {
                await EmbeddedRun.RunAsync(SmallRun(folder), default);
                return _smallRun = await RunAssertions.CheckAsync(folder);
            }
            finally
            {
                Directory.Delete(folder, recursive: true);
            }
        }
        finally
        {
            SmallRunGate.Release();
        }
    }

    /// <summary>
    /// A trained quality classifier (the sample site's English pages against the junk fixture) as the cleaner's whole
    /// recipe at threshold 0: every document is scored and none removed (the score travels in the clean shard), so the
    /// run is otherwise the run without it.
    /// </summary>
    private string ScoreOnlyQualityRecipe()
    {
        var site = SampleSite.Folder();
        static string Text(string page) => Cleaner.TextExtractor.Extract(File.ReadAllText(page)).Text;
        var positives = Directory.GetFiles(Path.Combine(site, "en"), "*.html").Order(StringComparer.Ordinal).Take(40).Select(Text).ToList();
        var negatives = Directory.GetFiles(Path.Combine(site, "..", "..", "tests", "Cleaner.Tests", "Junk"), "*.html").Order(StringComparer.Ordinal).Select(Text).Where(t => t.Length > 0).ToList();
        var model = Path.Combine(_out, "quality-model");
        Cleaner.Quality.QualityClassifier.Train(positives, negatives).Save(model);
        var recipe = Path.Combine(_out, "quality-recipe.json");
        File.WriteAllText(recipe, $$"""{ "description": "score only", "steps": [ { "filter": "quality", "settings": { "Model": "{{model}}", "Threshold": 0 } } ] }""");
        return recipe;
    }

    /// <summary>The quality step scored every kept document of the run (on the cleaner service).</summary>
    private async Task AssertQualityScoredAsync(Ledger ledger)
    {
        var store = new Storage.ShardStore(_out);
        var scores = new List<double>();
        foreach (var shard in ledger.Artifacts.Shards("sample", "clean"))
            await foreach (var group in store.ReadRowGroupsAsync<Contracts.Rows.CleanDocument>(shard))
                scores.AddRange(group.Select(d => d.QualityScore));
        Assert.True(scores.Count > 20 && scores.All(double.IsFinite) && scores.Distinct().Count() > 10, string.Join(", ", scores.Take(20)));
    }

    private static int FreePort()
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    [Fact(Timeout = 300_000)]
    public async Task The_chain_runs_in_memory()
    {
        var phases = new List<string>();
        // The process's Prometheus endpoint is read at every phase: the stage counters grow as the run goes.
        var port = FreePort();
        using var http = new HttpClient();
        var scrapes = new Dictionary<string, string>();
        void OnPhase(string phase)
        {
            phases.Add(phase);
            scrapes[phase] = http.GetStringAsync($"http://127.0.0.1:{port}/metrics").GetAwaiter().GetResult();
        }
        // A quality classifier that scores every document, and semantic dedup before tokenization with D4's prototype
        // pruning so that it removes documents from this small site (which has no paraphrases): the tokenizer must skip them.
        var settings = new Dictionary<string, string?>
        {
            ["Pipeline:Telemetry:PrometheusPort"] = port.ToString(),
            ["Pipeline:SemanticDedup:Enabled"] = "true",
            ["Pipeline:SemanticDedup:PrototypeFraction"] = "0.1",
            ["Pipeline:Cleaner:Recipe"] = ScoreOnlyQualityRecipe(),
        };
        // The run advances on the stages' events alone: with the ledger re-check an hour away, a phase that no event
        // moved on would hold the run past the test's timeout.
        // The alignment phase: SFT of the final checkpoint, then GRPO of the SFT model rewarded by char_f1 against the prompts' answers.
        var report = await EmbeddedRun.RunAsync(SmallRun(_out) with { OnPhase = OnPhase, Recheck = TimeSpan.FromHours(1), Settings = settings, Align = ["sft", "grpo"] }, default);
        Assert.True(File.Exists(report));
        Assert.Equal(["crawl", "clean + dedup", "tokenizer", "train", "evaluate", "align", "done"], phases);
        double Metric(string phase, string name, string label) => scrapes[phase].Split('\n')
            .Where(l => l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains(label, StringComparison.Ordinal))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(Metric("clean + dedup", "pipeline_stage_rows_total", "stage=\"crawl\"") > 0, scrapes["clean + dedup"]);
        Assert.True(Metric("tokenizer", "pipeline_stage_rows_total", "stage=\"clean\"") > 0);
        Assert.True(Metric("tokenizer", "pipeline_stage_rows_total", "stage=\"dedup\"") > 0);
        Assert.True(Metric("train", "pipeline_stage_rows_total", "stage=\"tokenize\"") > Metric("tokenizer", "pipeline_stage_rows_total", "stage=\"tokenize\""));
        Assert.True(Metric("tokenizer", "pipeline_stage_duration_seconds_count", "stage=\"clean\"") > 0);
        Assert.Equal(10, Metric("evaluate", "pipeline_training_step", "run=\"sample-gpt\""));
        Assert.True(Metric("done", "pipeline_evaluation_score", "run=\"sample-gpt\"") != 0);
        var outcome = await RunAssertions.CheckAsync(_out);
        Assert.True(outcome.CrawledUrls.Count >= 60, $"{outcome.CrawledUrls.Count} pages crawled");
        Assert.True(outcome.TokenRows > 5);
        // Not the reference of the other tests: semantic dedup changed what was tokenized.
        var semantic = JsonSerializer.Deserialize<ExcludedDocuments>(new Ledger(Path.Combine(_out, "ledger.db")).Documents.Get(LedgerKeys.SemanticDuplicates("sample"))!)!;
        Assert.True(semantic.Documents >= 5, $"{semantic.Documents} documents removed by semantic dedup");
        Assert.Contains($"prototypes removed before tokenization", File.ReadAllText(report));
        await AssertQualityScoredAsync(new Ledger(Path.Combine(_out, "ledger.db")));
        const string grpo = "sample-gpt-sft-from-10-grpo-from-10";
        var runLedger = new Ledger(Path.Combine(_out, "ledger.db"));
        Assert.Equal(("grpo", ("sample-gpt-sft-from-10", 10L)), LineageStore.All(runLedger.Documents).Where(l => l.Run == grpo).Select(l => (l.Method, l.Base!.Value)).Single());
        Assert.Equal(10, runLedger.Evaluations.Metrics(grpo, EvaluationStore.AlignmentKind).Count(m => m.Name == "reward"));
        Assert.Contains(runLedger.Evaluations.Evals(grpo), e => e.Task == "validation_perplexity");
        var markdown = File.ReadAllText(report);
        Assert.Contains($"| {grpo} | grpo | sample-gpt-sft-from-10 step 10 | completed | 10 |", markdown);
        Assert.Contains($"| {grpo} step 10 (from sample-gpt-sft-from-10 step 10) |", markdown);

        // A second run over the same folder has nothing left to do and changes nothing, except what a crash after
        // training lost: here the final checkpoint's and the aligned model's scores, which it produces again.
        using (var ledger = new SqliteConnection($"Data Source={Path.Combine(_out, "ledger.db")};Pooling=false"))
        {
            ledger.Open();
            using var forget = ledger.CreateCommand();
            forget.CommandText = "DELETE FROM evals WHERE step = 10 OR run_name LIKE '%-sft-from-%'; " +
                                 "DELETE FROM kv WHERE key LIKE 'evaluated:%step-0000010' OR key LIKE 'evaluated:%-sft-from-%'";
            Assert.True(forget.ExecuteNonQuery() > 0);
        }
        await EmbeddedRun.RunAsync(SmallRun(_out), default);
        var again = await RunAssertions.CheckAsync(_out);
        Assert.Equal(outcome.CrawledUrls, again.CrawledUrls);
        Assert.Equal(outcome.TokenRows, again.TokenRows);
    }

    [Fact(Timeout = 300_000)]
    public async Task Two_fresh_runs_give_the_same_tokenizer_and_the_same_tokens()
    {
        // Another run name, another folder, the site on another port, and crawl timing of its own (#31.3): which copy
        // of a duplicate is fetched first, and how pages fall into shards, must not change what is trained on.
        var reference = await SmallRunOutcomeAsync();
        await EmbeddedRun.RunAsync(SmallRun(_out) with { RunId = "again", Steps = 2 }, default);
        var again = await RunAssertions.CheckAsync(_out, runId: "again");
        Assert.Equal(reference.TokenizerHash, again.TokenizerHash);
        Assert.Equal((reference.TokenRows, reference.TokenContent), (again.TokenRows, again.TokenContent));
    }

    [Fact(Timeout = 300_000)]
    [Trait("Category", "RabbitMq")]
    public async Task The_chain_runs_over_RabbitMQ_and_removes_documents_that_contain_evaluation_text()
    {
        await _broker.RequireAsync();
        // A perplexity task made of two paragraphs of the sample site's first chapter: the documents that hold them are
        // contaminated, and Pipeline:Decontaminate:Remove keeps them out of the tokenizer's input.
        var site = SampleSite.Folder();
        var paragraphs = Directory.GetFiles(Path.Combine(site, "en"), "ch01-0*.html").Order(StringComparer.Ordinal).Take(2)
            .Select(p => Cleaner.TextExtractor.Extract(File.ReadAllText(p)).Text.Split('\n').MaxBy(l => l.Length)!).ToList();
        File.WriteAllText(Path.Combine(_out, "overlap.txt"), string.Join("\n\n", paragraphs));
        var task = Path.Combine(_out, "overlap.yaml");
        File.WriteAllText(task, "name: overlap_bpb\nversion: 1\ntype: perplexity\ndata: overlap.txt\n");
        var settings = new Dictionary<string, string?>(_broker.Settings)
        {
            ["Pipeline:Decontaminate:Remove"] = "true", ["Pipeline:SemanticDedup:Enabled"] = "true", ["Pipeline:SemanticDedup:PrototypeFraction"] = "0.1",
            ["Pipeline:Cleaner:Recipe"] = ScoreOnlyQualityRecipe(),
        };
        // The final checkpoint is also released by message: quantized (then scored on arrival) and as a GGUF file.
        // The alignment phase as InstructGPT's: SFT, a reward model from the SFT model, PPO of the SFT model against it.
        await RunOverBrokerAsync(SmallRun(_out) with { Settings = settings, EvalTasks = [task], Release = ["int8", "gguf:q8_0"], Align = ["sft", "reward", "ppo"] });
        var outcome = await RunAssertions.CheckAsync(_out);
        Assert.True(outcome.CrawledUrls.Count >= 60, $"{outcome.CrawledUrls.Count} pages crawled");
        Assert.True(outcome.Decontaminated > 0, "no document was removed");
        Assert.Contains("documents that contain evaluation examples were removed before tokenization", File.ReadAllText(Path.Combine(_out, "reports", "report.md")));
        // The task's examples found in the corpus, in the evaluation table's "contaminated" row.
        Assert.Matches(@"\| \*contaminated\* \|[^\n]*\| 2/2 \|", File.ReadAllText(Path.Combine(_out, "reports", "report.md")));

        // The releases: the int8 copy scored on the run's task like any checkpoint, with its lineage; the GGUF whole.
        var ledger = new Ledger(Path.Combine(_out, "ledger.db"));
        await AssertQualityScoredAsync(ledger);
        // Semantic dedup ran on the dedup service, by message; RunAssertions checked that the tokenizer skipped what it removed.
        Assert.True(JsonSerializer.Deserialize<ExcludedDocuments>(ledger.Documents.Get(LedgerKeys.SemanticDuplicates("sample"))!)!.Documents >= 5);
        Assert.Contains(ledger.Evaluations.Evals("sample-gpt-int8"), e => e.Step == 10 && e.Task == "overlap_bpb");
        var lineage = Assert.Single(LineageStore.All(ledger.Documents), l => l.Run == "sample-gpt-int8");
        Assert.Equal(("quantize", ("sample-gpt", 10L)), (lineage.Method, lineage.Base!.Value));
        var gguf = File.ReadAllBytes(Path.Combine(_out, "releases", "sample-gpt", "sample-gpt-step-0000010-q8_0.gguf"));
        Assert.Equal("GGUF"u8.ToArray(), gguf[..4]);
        var report = File.ReadAllText(Path.Combine(_out, "reports", "report.md"));
        Assert.Contains("| sample-gpt-int8 step 10 (quantized) |", report);
        Assert.Contains("| gguf:q8_0 | checkpoints/sample-gpt/step-0000010 | releases/sample-gpt/sample-gpt-step-0000010-q8_0.gguf (", report);

        // The reward model (not scored on tasks) and the PPO policy it rewarded, each with its lineage and figures.
        const string sft = "sample-gpt-sft-from-10", rewardModel = sft + "-reward-from-10", ppo = sft + "-ppo-from-10";
        Assert.Equal(("reward+lora", sft), LineageStore.All(ledger.Documents).Where(l => l.Run == rewardModel).Select(l => (l.Method, l.Base!.Value.Run)).Single());
        Assert.Empty(ledger.Evaluations.Evals(rewardModel));
        Assert.Equal(("ppo", sft, rewardModel), LineageStore.All(ledger.Documents).Where(l => l.Run == ppo).Select(l => (l.Method, l.Base!.Value.Run, l.Reward?.Run)).Single());
        Assert.Contains(ledger.Evaluations.Evals(ppo), e => e.Task == "overlap_bpb");
        Assert.Contains(ledger.Evaluations.Metrics(ppo, EvaluationStore.AlignmentKind), m => m.Name == "kl");
        Assert.Contains($"| {ppo} | ppo | {sft} step 10 | completed | 10 |", report);
        Assert.Contains($"| {rewardModel} | reward | {sft} step 10 | completed | 10 |", report);
    }

    [Fact(Timeout = 300_000)]
    [Trait("Category", "RabbitMq")]
    public async Task A_broker_replaced_by_an_empty_one_mid_run_loses_nothing_and_nothing_restarts()
    {
        // Regression (#26): a new, empty broker node mid-run lost every announcement it held or that was published
        // meanwhile; the cleaner never saw those shards and the coordinator waited forever without a word. (This also
        // covers a restart of the same node, which loses less: every connection drops and the services reconnect.)
        await _broker.RequireAsync();
        Task? replace = null;
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var options = SmallRun(_out) with
        {
            MaxPages = 600,
            Reconcile = TimeSpan.FromSeconds(5),
            Settings = new Dictionary<string, string?>(_broker.Settings) { ["Pipeline:Crawler:PagesPerShard"] = "40" },
            // Mid-crawl, on a state rather than after a fixed wait: once the first raw shard is recorded, shards are
            // being announced, cleaned and deduplicated.
            OnPhase = phase => replace ??= phase == "crawl" ? ReplaceOnceShardsFlowAsync() : null,
        };
        await RunOverBrokerAsync(options);
        Assert.NotNull(replace);
        await replace;

        async Task ReplaceOnceShardsFlowAsync()
        {
            var ledger = new Runtime.Ledger(Path.Combine(_out, "ledger.db"));
            while (ledger.Artifacts.Shards("sample", "crawl").Count == 0) await Task.Delay(50);
            await _broker.ReplaceWithEmptyAsync(TimeSpan.FromSeconds(3));
        }
        // The same invariants as the embedded run: every page crawled once, cleaned once, deduplicated once, tokenized.
        var outcome = await RunAssertions.CheckAsync(_out);
        Assert.True(outcome.CrawledUrls.Count > 300, $"{outcome.CrawledUrls.Count} pages crawled");
    }

    /// <summary>
    /// A run over the test's virtual host, with a deadline inside the test's timeout: a run that does not finish fails
    /// naming its phase, the ledger's stage rows and the broker's queues, where an xunit timeout would say nothing.
    /// </summary>
    private async Task RunOverBrokerAsync(EmbeddedRunOptions options)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var phase = "start";
        var onPhase = options.OnPhase;
        try
        {
            await EmbeddedRun.RunAsync(options with { OnPhase = p => { phase = p; onPhase?.Invoke(p); } }, deadline.Token);
        }
        catch (Exception) when (deadline.IsCancellationRequested)
        {
            var ledger = new Runtime.Ledger(Path.Combine(_out, "ledger.db"));
            var rows = new RunProgress(ledger, options.RunId!, $"{options.RunId}-gpt", options.MaxPages, options.Steps, null).Read(DateTime.UtcNow);
            Assert.Fail($"the run did not finish in 4 minutes, in phase '{phase}'. Stages: {string.Join("; ", rows.Select(RunProgress.PlainLine))}. " +
                        $"Queues: {await _broker.DescribeQueuesAsync()}");
        }
    }

    [Fact(Timeout = 300_000)]
    [Trait("Category", "RabbitMq")]
    public async Task A_faulted_stage_ends_the_run_at_once_with_its_error()
    {
        // Regression: with --vocab 10 the tokenizer consumer faulted and the run waited for up to 24 hours. The run
        // command now refuses such a value up front, so the coordinator is driven directly to reach the fault.
        await using var site = await Crawler.StaticSite.StartAsync(SampleSite.Folder());
        var settings = new Dictionary<string, string?>
        {
            ["Pipeline:DataRoot"] = _out,
            ["Pipeline:Crawler:AllowedAddressRanges:0"] = "127.0.0.0/8",
            ["Pipeline:Crawler:PerHostDelay"] = "00:00:00",
            ["Pipeline:Crawler:PerHostConcurrency"] = "4",
        };
        using var host = PipelineHost.Build(Stages.All, settings, quiet: true, coordinatesRuns: true);
        await host.StartAsync();
        var services = host.Services;
        var coordinator = new RunCoordinator(host.Bus(), services.GetRequiredService<Runtime.Ledger>(), services.GetRequiredService<Storage.ShardStore>(),
            services.GetRequiredService<RunFaults>(), services.GetRequiredService<RunSignals>(), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var request = new RunRequest("faulty", [site.Address.ToString()], 60, 10, EmbeddedRun.SampleTraining("faulty", 10));
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => coordinator.RunAsync(request, default));
        Assert.Contains("tokenizer training failed", error.Message);
        Assert.Contains("vocab size 10", error.Message);
        await host.StopAsync();
    }

    public void Dispose()
    {
        _broker.Dispose();
        Directory.Delete(_out, recursive: true);
    }
}
