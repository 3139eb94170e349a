using System.Diagnostics;
using Pipeline.Runtime;
using Pipeline.Tests.Shared;

namespace Pipeline.Cli.Tests;

/// <summary>
/// Every service as its own process (`pipeline serve`) over the real RabbitMQ, each with a local folder of its own (no
/// shared file system: shards, tokenizers, manifests, checkpoints and task files go through S3), the run ledger in
/// PostgreSQL, and a `pipeline run` that hosts none of them and only coordinates: the deployment compose.yaml
/// describes, on one machine.
/// </summary>
[Collection("end-to-end")]
public sealed class MultiProcessTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("multi-").FullName;
    private readonly S3TestBucket _bucket = new();
    private readonly List<Process> _services = [];
    private readonly PostgresTestDatabase _ledgerDatabase = new();
    private readonly RabbitMqBroker _broker = new();

    // The broker, the ledger and the bucket, as a deployment would configure them.
    private Dictionary<string, string?> Settings => new(_broker.Settings.Concat(_bucket.Settings))
    {
        ["Pipeline:Ledger:ConnectionString"] = _ledgerDatabase.ConnectionString,
    };

    private string Folder(string host) => Path.Combine(_root, host);

    private static readonly string[] Services = ["crawler", "cleaner", "dedup", "tokenizer", "trainer", "evaluator"];

    // The queues the services consume from; each has a consumer once its process is up.
    private static readonly string[] Queues = ["crawl-requested", "raw-shard", "clean-shard", "dedup-shard", "train-tokenizer", "start-training", "checkpoint-saved", "alignment-requested", "evaluate-requested", "stage-contamination"];

    private static readonly string[] CrawlerSettings =
    [
        "Pipeline:Crawler:AllowedAddressRanges:0=127.0.0.0/8", "Pipeline:Crawler:PerHostConcurrency=4",
        "Pipeline:Crawler:PerHostDelay=00:00:00", "Pipeline:Crawler:PagesPerShard=100",
    ];

    // As a deployment would pass them: PIPELINE__* and AWS_* environment variables.
    private Dictionary<string, string?> Environment() => new(RabbitMqBroker.AsEnvironment(Settings).Concat(S3TestBucket.CredentialEnvironment));

    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _serviceLog = new();

    private void Serve(string service, string? host = null) =>
        _services.Add(PipelineProcess.Start(["serve", service, "--out", Folder(host ?? service)], service == "crawler" ? CrawlerSettings : [], Environment(),
            line => _serviceLog.Enqueue($"{service}: {line}")));

    [Fact(Timeout = 300_000)]
    [Trait("Category", "RabbitMq")]
    [Trait("Category", "Postgres")]
    [Trait("Category", "S3")]
    public async Task Every_service_runs_in_its_own_process_and_folder_over_RabbitMQ_S3_and_PostgreSQL_and_a_killed_coordinator_resumes_over_a_new_broker_beside_a_second_run()
    {
        await _broker.RequireAsync();
        foreach (var service in Services) Serve(service);
        // A second crawler host: the run splits its crawl in two parts by host, which any crawler service may take.
        Serve("crawler", "crawler-2");
        await WaitForConsumersAsync();

        // The coordinating run as the README has it: `pipeline run --services none` with the same PIPELINE__*
        // environment and nothing else (smaller than the sample's defaults). Its settings (the shipped evaluation
        // tasks, the LoRA SFT of the final checkpoint) reach the services in its messages, not in their configuration.
        string[] runArguments = ["run", "--run", "sample", "--out", Folder("coordinator"), "--services", "none", "--max-pages", "80", "--crawl-parts", "2", "--vocab", "400", "--steps", "10"];
        var ledger = Ledger.PostgreSql(_ledgerDatabase.ConnectionString);
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();

        // The coordinator is killed (-9) once the crawl is over, mid-way through the later phases, and started again:
        // its state is the ledger and the services' work, so the second one finishes the run.
        using (var first = PipelineProcess.Start(runArguments, [], Environment(), log.Enqueue))
        {
            var crawlDeadline = DateTime.UtcNow.AddMinutes(2);
            while (ledger.Documents.Get("crawl-summary:sample") is null && !first.HasExited && DateTime.UtcNow < crawlDeadline) await Task.Delay(50);
            Assert.False(first.HasExited, "the first coordinator ended before it could be killed:\n" + string.Join("\n", log.TakeLast(40)));
            first.Kill(entireProcessTree: true);
            await first.WaitForExitAsync();
        }
        Assert.NotEqual("completed", ledger.Runs.State("sample"));
        // Meanwhile the broker is replaced by an empty one (its virtual host deleted with every queue, message and
        // connection, and created again): the services reconnect on their own, and what it held is announced again.
        await _broker.ReplaceWithEmptyAsync(TimeSpan.FromSeconds(3));
        await WaitForConsumersAsync();
        // A second run starts beside the resumed one, on the same ledger, bucket, broker and services, over the same
        // pages (its own sample site): runs are independent, so it keeps what the first kept (#26: it kept nothing).
        string[] otherArguments = ["run", "--run", "other", "--out", Folder("coordinator-2"), .. runArguments[5..], "--eval-tasks", "none"];
        var otherLog = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await Task.WhenAll(FinishAsync(runArguments, log), FinishAsync(otherArguments, otherLog));
        // Its output went to a pipe: plain progress lines in pipeline order, no colour codes and no redraws.
        Assert.Contains(log, l => l.StartsWith("progress crawl: ", StringComparison.Ordinal));
        Assert.Contains(log, l => l.StartsWith("progress train: ", StringComparison.Ordinal));
        Assert.DoesNotContain(log, l => l.Contains('\x1b') || l.Contains('\r'));
        // The services log inside MassTransit's traces: a cleaner's line for a shard carries its trace id.
        Assert.Contains(_serviceLog, l => l.StartsWith("cleaner: ", StringComparison.Ordinal) && l.Contains("clean: shard", StringComparison.Ordinal) && l.Contains("TraceId:", StringComparison.Ordinal));
        // Checked from a host of its own that has only the bucket and the ledger.
        using var objects = new Storage.S3ObjectStore(_bucket.Options(), S3TestBucket.Credentials);
        Storage.ShardStore Host(string name) => new(Folder(name), objects);
        var outcome = await RunAssertions.CheckAsync(Folder("coordinator"), aligned: true, ledger: ledger, store: Host("checker"));
        foreach (var host in Services.Append("crawler-2").Append("coordinator").Append("coordinator-2"))
            Assert.False(File.Exists(Path.Combine(Folder(host), "ledger.db")), $"{host} used a SQLite ledger");
        // Each host fetched what it needed and wrote its own: the trainer never held a crawl shard, the crawler no checkpoint.
        Assert.False(Directory.Exists(Path.Combine(Folder("trainer"), "shards", "raw")));
        Assert.False(Directory.Exists(Path.Combine(Folder("crawler"), "checkpoints")));
        Assert.True(Directory.Exists(Path.Combine(Folder("evaluator"), "checkpoints")));
        Assert.Contains("## Training", File.ReadAllText(Path.Combine(await Host("checker-reports").FetchFolderAsync("reports"), "report.md")));

        // The same counts at every stage as the embedded run of the same command (one process, one folder, SQLite).
        var embedded = await EndToEndTests.SmallRunOutcomeAsync();
        static IEnumerable<string> Paths(IEnumerable<string> urls) => urls.Select(u => new Uri(u).PathAndQuery).Order(StringComparer.Ordinal); // each run serves the site on a port of its own
        Assert.Equal(Paths(embedded.CrawledUrls), Paths(outcome.CrawledUrls));
        // The same documents tokenized the same way, and the same tokenizer, whichever copy of a duplicate arrived first
        // (the smallest id is kept) and however the crawl spread pages over shards (#31.3).
        Assert.Equal((embedded.TokenRows, embedded.TokenContent, embedded.TokenizerHash), (outcome.TokenRows, outcome.TokenContent, outcome.TokenizerHash));
        // The run beside it kept the same pages, documents and tokens, and wrote its own report.
        var other = await RunAssertions.CheckAsync(Folder("coordinator-2"), runId: "other", aligned: true, ledger: ledger, store: Host("checker-other"));
        Assert.Equal(Paths(outcome.CrawledUrls), Paths(other.CrawledUrls));
        Assert.Equal((outcome.TokenRows, outcome.TokenContent, outcome.TokenizerHash), (other.TokenRows, other.TokenContent, other.TokenizerHash));
        // The crawl ran as two jobs (the sample site is one host, so one part crawled it and the other waited idle).
        var parts = new[] { "p0", "p1" }.Select(p => System.Text.Json.JsonSerializer.Deserialize<Crawler.CrawlSummary>(ledger.Documents.Get($"crawl-summary:sample:{p}")!)!).ToList();
        Assert.Equal([0, outcome.CrawledUrls.Count], parts.Select(p => p.Pages).Order());

        // No service was configured with a task: the run asked for each on every base and aligned checkpoint, as the
        // embedded run's evaluator scores them on arrival (#26: only the final ones were scored over RabbitMQ).
        var shipped = SampleSite.ShippedTasks().Select(Evaluator.Tasks.TaskLoader.Load).Select(t => t.Name).ToList();
        Assert.NotEmpty(shipped);
        // (Every checkpoint the run still keeps at its end: older ones that KeepLast removed were scored for validation only.)
        foreach (var runName in new[] { "sample-gpt", "sample-gpt-sft-from-10" })
        {
            var kept = await Model.Checkpoints.ListAsync(Host("checker-checkpoints"), Model.Checkpoints.RunFolder(runName), CancellationToken.None);
            var steps = kept.Select(uri => long.Parse(uri[(uri.LastIndexOf("step-", StringComparison.Ordinal) + 5)..])).ToList();
            Assert.True(runName.Contains("sft") || steps.Count > 1, $"{runName}: checkpoints at steps {string.Join(", ", steps)}");
            foreach (var step in steps)
            {
                var scored = ledger.Evaluations.Evals(runName).Where(e => e.Step == step).Select(e => e.Task).ToHashSet();
                Assert.All(shipped, task => Assert.Contains(task, scored));
            }
        }
        Assert.All(_services, p => Assert.False(p.HasExited));
    }

    private async Task WaitForConsumersAsync()
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        foreach (var queue in Queues)
        {
            while (await _broker.ConsumerCountAsync(queue) == 0)
            {
                Assert.All(_services, p => Assert.False(p.HasExited, $"a service exited with code {(p.HasExited ? p.ExitCode : 0)}"));
                Assert.True(DateTime.UtcNow < deadline, $"no consumer on '{queue}' after 2 minutes");
                await Task.Delay(200);
            }
        }
    }

    private async Task FinishAsync(string[] arguments, System.Collections.Concurrent.ConcurrentQueue<string> log)
    {
        using var run = PipelineProcess.Start(arguments, [], Environment(), log.Enqueue);
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try
        {
            await run.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            run.Kill(entireProcessTree: true);
        }
        Assert.True(run.HasExited && run.ExitCode == 0, $"pipeline {string.Join(' ', arguments[..3])}: {(run.HasExited ? $"exit {run.ExitCode}" : "timed out")}\n" + string.Join("\n", log.TakeLast(40)));
    }

    public void Dispose()
    {
        foreach (var process in _services)
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit();
            process.Dispose();
        }
        Directory.Delete(_root, recursive: true);
        _ledgerDatabase.Dispose();
        _broker.Dispose();
    }
}
