using System.Diagnostics;
using Pipeline.Cleaner;
using Pipeline.Contracts.V1;
using Pipeline.Crawler;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;

namespace Pipeline.Cli.Tests;

/// <summary>
/// Bad input, as a user types it: one `error:` line naming the input and the problem, exit code 2, no stack trace,
/// and nothing written where it should not be.
/// </summary>
public sealed class BadInputTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("bad-").FullName;

    internal static Task<(int Exit, string Stdout, string Stderr)> RunAsync(params string[] args) => RunAsync(null, args);

    internal static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(IReadOnlyDictionary<string, string?>? environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = AppContext.BaseDirectory };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "pipeline.dll"));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment["COLUMNS"] = "200";
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>()) start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }

    private static Task FailsWith(string expected, params string[] args) => FailsWith(null, expected, args);

    internal static async Task FailsWith(IReadOnlyDictionary<string, string?>? environment, string expected, params string[] args)
    {
        var (exit, stdout, stderr) = await RunAsync(environment, args);
        var command = $"pipeline {string.Join(' ', args)}";
        Assert.True(exit == 2, $"{command} exited with {exit}:\n{stdout}\n{stderr}");
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var error = Assert.Single(lines, l => l.StartsWith("error: "));
        Assert.Contains(expected, error);
        Assert.DoesNotContain("   at ", stderr + stdout); // no stack trace
    }

    /// <summary>A raw-page shard and a clean-document shard, written as the stages write them.</summary>
    private async Task<(string Raw, string Clean)> ShardsAsync()
    {
        var store = new ShardStore(Path.Combine(_root, "in"));
        var html = string.Join("", Enumerable.Range(0, 30).Select(i => $"<p>Debian is a free operating system, paragraph {i}, with packages and documentation.</p>"));
        await store.WriteParquetAsync("raw/raw-1.parquet", Enumerable.Range(0, 5).Select(i => new RawPage { Url = $"http://a.test/{i}", FinalUrl = $"http://a.test/{i}", Status = 200, Html = $"<html lang=en><body>{html}{i}</body></html>" }).ToList(),
            new ShardDescriptor("r1", "crawl", "", [], "t"));
        await store.WriteParquetAsync("clean/clean-1.parquet", Enumerable.Range(0, 5).Select(i => new CleanDocument { Id = $"d{i}", Url = $"http://a.test/{i}", Text = $"Debian text number {i} " + html, Language = "en" }).ToList(),
            new ShardDescriptor("c1", "clean", "", [], "t"));
        return (Path.Combine(_root, "in", "raw"), Path.Combine(_root, "in", "clean"));
    }

    [Fact(Timeout = 240_000)]
    public async Task Shards_of_the_wrong_kind_are_refused_naming_both_kinds()
    {
        // Regression: dedup of raw pages kept an empty document, tokenize of raw pages wrote end-of-text tokens, and
        // clean of clean documents reported every one "empty".
        var (raw, clean) = await ShardsAsync();
        var outDir = Path.Combine(_root, "out");
        await FailsWith("expected a CleanDocument shard, but this is a RawPage shard", "dedup", raw, "--out", outDir);
        await FailsWith("expected a RawPage shard, but this is a CleanDocument shard", "clean", clean, "--out", outDir);
        var (exit, _, stderr) = await RunAsync("tokenizer", "train", clean, "--vocab", "300", "--out", outDir);
        Assert.True(exit == 0, stderr);
        await FailsWith("expected a CleanDocument shard, but this is a RawPage shard", "tokenize", raw, "--tokenizer", Path.Combine(outDir, "tokenizers", "cli"), "--out", outDir);
        Assert.False(Directory.Exists(Path.Combine(outDir, "shards", "dedup")) && Directory.GetFiles(Path.Combine(outDir, "shards", "dedup"), "*.parquet", SearchOption.AllDirectories).Length > 0);
        Assert.False(Directory.Exists(Path.Combine(outDir, "shards", "tokens")) && Directory.GetFiles(Path.Combine(outDir, "shards", "tokens"), "*.parquet", SearchOption.AllDirectories).Length > 0);
    }

    [Fact(Timeout = 240_000)]
    public async Task Configuration_mistakes_are_one_error_line_naming_the_key()
    {
        var (raw, clean) = await ShardsAsync();
        var outDir = Path.Combine(_root, "out");
        await FailsWith("'PagesPerShardd'", "crawl", "--seed", "http://a.test/", "--out", outDir, "--set", "Pipeline:Crawler:PagesPerShardd=3");
        await FailsWith("Pipeline:Crawler:PagesPerShard", "crawl", "--seed", "http://a.test/", "--out", outDir, "--set", "Pipeline:Crawler:PagesPerShard=0");
        await FailsWith("'Crawlr'", "crawl", "--seed", "http://a.test/", "--out", outDir, "--set", "Pipeline:Crawlr:MaxPages=3");
        // Values the attributes cannot judge are checked when the service starts, naming the key (#26).
        await FailsWith("Pipeline:Crawler:RequestTimeout", "crawl", "--seed", "http://a.test/", "--out", outDir, "--set", "Pipeline:Crawler:RequestTimeout=-00:00:05");
        await FailsWith("Pipeline:Crawler:AllowedAddressRanges:0", "crawl", "--seed", "http://a.test/", "--out", outDir, "--set", "Pipeline:Crawler:AllowedAddressRanges:0=notacidr");
        await FailsWith("Pipeline:Crawler:BlockedUrlPatterns:0", "crawl", "--seed", "http://a.test/", "--out", outDir, "--set", "Pipeline:Crawler:BlockedUrlPatterns:0=(unclosed");
        await FailsWith("Pipeline:Dedup:Bands", "dedup", clean, "--out", outDir, "--set", "Pipeline:Dedup:Bands=0");
        await FailsWith("Pipeline:Cleaner:Filters:c4:Enabled", "clean", raw, "--out", outDir, "--set", "Pipeline:Cleaner:Filters:c4:Enabled=maybe");
        await FailsWith("Pipeline:Cleaner:NormalizeNfkc", "clean", raw, "--out", outDir, "--set", "Pipeline:Cleaner:NormalizeNfkc=maybe");
        await FailsWith("there is no filter named 'c5'", "clean", raw, "--out", outDir, "--set", "Pipeline:Cleaner:Filters:c5:Enabled=false");
        await FailsWith("not a configuration key", "clean", raw, "--out", outDir, "--set", "Cleaner:MaskPii=false");

        // Train config files: empty, malformed, wrongly typed, misspelled, nonsense values, a name that leaves --out.
        var cases = new Dictionary<string, string>
        {
            [""] = "is empty",
            ["{ \"Training\": { "] = "--config",
            ["{ \"Training\": { \"MaxSteps\": \"many\" } }"] = "MaxSteps",
            ["{ \"Training\": { \"MaxStep\": 5 } }"] = "MaxStep",
            ["{ \"Training\": { \"Modle\": { \"Layers\": 1 } } }"] = "Modle",
            ["{ \"Training\": { \"EvalEvery\": 0 } }"] = "EvalEvery",
            ["{ \"Training\": { \"CheckpointEvery\": 0 } }"] = "CheckpointEvery",
            ["{ \"Training\": { \"LogEvery\": 0 } }"] = "LogEvery",
            ["{ \"Training\": { \"BatchSize\": -4 } }"] = "BatchSize",
            ["{ \"Training\": { \"Model\": { \"Heads\": 0 } } }"] = "Heads",
            ["{ \"Training\": { \"RunName\": \"../../x\" } }"] = "'../../x' is not a valid name",
        };
        var index = 0;
        foreach (var (json, expected) in cases)
        {
            var file = Path.Combine(_root, $"train-{index++}.json");
            File.WriteAllText(file, json);
            await FailsWith(expected, "train", "--config", file, "--out", outDir);
        }
        var align = Path.Combine(_root, "align.json");
        File.WriteAllText(align, "{ \"Stepz\": 3 }");
        await FailsWith("Stepz", "align", "sft", "--base", outDir, "--data", align, "--config", align, "--out", outDir);
    }

    [Fact(Timeout = 240_000)]
    public async Task Words_the_command_does_not_take_and_inputs_read_late_are_one_error_line_at_once()
    {
        // Regression (#26): an unknown flag or `--steps abc` printed the help page and exited 1; `eval --task
        // /etc/passwd` exited 1 with no error line; a missing --eval-tasks file was found only after crawl, clean and dedup.
        var outDir = Path.Combine(_root, "out");
        await FailsWith("'--bogus'", "run", "--bogus", "--out", outDir);
        await FailsWith("'abc'", "run", "--steps", "abc", "--out", outDir);
        await FailsWith("'/etc/passwd'", "eval", "--task", "/etc/passwd", "--checkpoint", Path.Combine(outDir, "checkpoints", "x", "step-0000001"), "--out", outDir);
        await FailsWith("/nonexistent.yaml", "run", "--eval-tasks", "/nonexistent.yaml", "--out", outDir);
        Assert.False(Directory.Exists(Path.Combine(outDir, "shards")), "the run crawled before it read its task files");
        await FailsWith("'../x'", "run", "--run", "../x", "--out", outDir);
    }

    [Fact(Timeout = 240_000)]
    public async Task A_link_inside_out_that_leads_outside_is_refused_not_followed()
    {
        // Regression (#26): a reports/ folder symlinked out of --out was followed, and clean wrote its report there.
        var (raw, _) = await ShardsAsync();
        var outDir = Path.Combine(_root, "linked");
        var outside = Path.Combine(_root, "outside");
        Directory.CreateDirectory(outDir);
        Directory.CreateDirectory(outside);
        Directory.CreateSymbolicLink(Path.Combine(outDir, "reports"), outside);
        await FailsWith("outside the storage root", "clean", raw, "--out", outDir);
        Assert.Empty(Directory.GetFileSystemEntries(outside));
    }

    [Fact(Timeout = 240_000)]
    public async Task A_damaged_ledger_is_one_error_line_for_every_command()
    {
        // Regression (#26): a corrupt or truncated ledger.db aborted every command (exit 134, a stack trace).
        var outDir = Path.Combine(_root, "damaged");
        Directory.CreateDirectory(outDir);
        File.WriteAllText(Path.Combine(outDir, "ledger.db"), "this is not a SQLite database, only some text that looks like one");
        await FailsWith("ledger.db", "status", "--out", outDir);
        await FailsWith("ledger.db", "run", "--out", outDir, "--eval-tasks", "none");
        var (raw, _) = await ShardsAsync();
        await FailsWith("ledger.db", "clean", raw, "--out", outDir);
    }

    [Fact(Timeout = 240_000)]
    public async Task A_run_resumed_with_other_settings_names_each_difference()
    {
        // Regression (#26): a second `run` on the same ledger with other --max-pages or --vocab silently kept the first
        // run's settings and waited for a checkpoint that would never exist.
        var outDir = Path.Combine(_root, "resumed");
        var ledger = new Runtime.Ledger(Path.Combine(outDir, "ledger.db"));
        ledger.Runs.Ensure("first", "first-gpt", """{"RunId":"first","MaxPages":400,"VocabSize":2048}""");
        await FailsWith("--max-pages was 400, now 30; --vocab was 2048, now 300", "run", "--run", "first", "--out", outDir, "--max-pages", "30", "--vocab", "300", "--eval-tasks", "none");
        Assert.Equal("running", ledger.Runs.State("first"));
    }

    [Fact(Timeout = 240_000)]
    [Trait("Category", "RabbitMq")]
    [Trait("Category", "S3")]
    [Trait("Category", "RabbitMq")]
    [Trait("Category", "S3")]
    public async Task A_service_with_a_bad_credential_fails_at_start_with_one_line_naming_it()
    {
        // Regression (#26): a wrong broker password aborted with exit 134 and 40 stack lines; a missing bucket or a
        // wrong S3 key started the service silently, to fail only when work arrived.
        using var broker = new RabbitMqBroker();
        await broker.RequireAsync();
        var bucket = new Pipeline.Tests.Shared.S3TestBucket();
        Dictionary<string, string?> Environment(params (string Key, string Value)[] changes)
        {
            var settings = new Dictionary<string, string?>(broker.Settings.Concat(bucket.Settings));
            foreach (var (key, value) in changes.Where(c => c.Key.StartsWith("Pipeline:"))) settings[key] = value;
            var environment = RabbitMqBroker.AsEnvironment(settings);
            foreach (var (key, value) in Pipeline.Tests.Shared.S3TestBucket.CredentialEnvironment) environment[key] = value;
            foreach (var (key, value) in changes.Where(c => !c.Key.StartsWith("Pipeline:"))) environment[key] = value;
            return environment;
        }
        var cases = new (string Expected, (string, string)[] Changes)[]
        {
            ("refused the credentials", [("Pipeline:RabbitMq:Password", "wrong")]),
            ("vhost no-such-vhost not found", [("Pipeline:RabbitMq:VirtualHost", "no-such-vhost")]),
            ("NoSuchBucket", [("Pipeline:Storage:S3:Bucket", "no-such-bucket")]),
            ("InvalidAccessKeyId", [("AWS_ACCESS_KEY_ID", "WRONG")]),
        };
        foreach (var (expected, changes) in cases)
        {
            var started = Stopwatch.StartNew();
            await FailsWith(Environment(changes), expected, "serve", "cleaner", "--out", Path.Combine(_root, "svc"));
            Assert.True(started.Elapsed < TimeSpan.FromSeconds(30), $"{expected}: took {started.Elapsed}");
        }
        // And with every credential right, the service says it is ready and which queue it consumes.
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var service = PipelineProcess.Start(["serve", "cleaner", "--out", Path.Combine(_root, "svc")], [], Environment(), log.Enqueue);
        try
        {
            var deadline = DateTime.UtcNow.AddMinutes(1);
            while (!log.Any(l => l.Contains("ready")) && !service.HasExited && DateTime.UtcNow < deadline) await Task.Delay(200);
            var ready = Assert.Single(log, l => l.Contains("serve cleaner ready"));
            Assert.Contains("consuming: raw-shard", ready);
            Assert.Equal(1u, await broker.ConsumerCountAsync("raw-shard"));
        }
        finally
        {
            service.Kill(entireProcessTree: true);
            await service.WaitForExitAsync();
        }
    }

    [Fact(Timeout = 240_000)]
    [Trait("Category", "Postgres")]
    [Trait("Category", "Postgres")]
    public async Task Status_reads_the_configured_ledger()
    {
        // Regression (#26): `status --out DIR` said "holds no run (no ledger.db there)" with the ledger in PostgreSQL.
        using var database = new Pipeline.Tests.Shared.PostgresTestDatabase();
        var ledger = Runtime.Ledger.PostgreSql(database.ConnectionString);
        ledger.Runs.Ensure("remote-run", "remote-run-gpt", "{}");
        ledger.Runs.Ensure("other-run", "other-run-gpt", "{}");
        var (exit, stdout, stderr) = await RunAsync(new Dictionary<string, string?> { ["PIPELINE__LEDGER__CONNECTIONSTRING"] = database.ConnectionString },
            "status", "--out", Path.Combine(_root, "empty"));
        Assert.True(exit == 0, stderr);
        Assert.Contains("remote-run", stdout);
        Assert.Contains("other-run", stdout);
        await FailsWith("holds no run", "status", "--out", Path.Combine(_root, "empty"));
    }

    [Fact(Timeout = 240_000)]
    public async Task Names_that_would_leave_the_output_folder_are_refused()
    {
        // Regression: align --name ../../x and lora merge --name ../../x wrote outside --out.
        var outDir = Path.Combine(_root, "deep", "out");
        foreach (var name in new[] { "../../x", "..", "/tmp/x", "a/b", ".hidden" })
        {
            await FailsWith("is not a valid name", "align", "sft", "--base", _root, "--data", _root, "--name", name, "--out", outDir);
            await FailsWith("is not a valid name", "lora", "merge", "--adapter", _root, "--name", name, "--out", outDir);
        }
        Assert.False(Directory.Exists(Path.Combine(_root, "x")));
        Assert.False(Directory.Exists(Path.Combine(_root, "deep", "x")));
    }

    [Fact(Timeout = 240_000)]
    public async Task Bad_files_folders_and_arguments_are_one_error_line()
    {
        var garbage = Path.Combine(_root, "garbage.parquet");
        File.WriteAllText(garbage, "this is not parquet");
        await FailsWith("'" + garbage + "' is not a readable Parquet file", "inspect", garbage);
        var (raw, _) = await ShardsAsync();
        var shard = Directory.GetFiles(raw)[0];
        var truncated = Path.Combine(_root, "truncated.parquet");
        File.WriteAllBytes(truncated, File.ReadAllBytes(shard)[..^100]);
        await FailsWith("is not a readable Parquet file", "inspect", truncated);

        // --out naming a file, or a place that cannot be written (a folder of /proc: read-only even for root).
        await FailsWith("is a file, not a folder", "clean", raw, "--out", garbage);
        await FailsWith("is not a writable folder", "clean", raw, "--out", "/proc/pipeline-test-out");
        // status of a folder with no run creates nothing there.
        var typo = Path.Combine(_root, "no-such-run");
        await FailsWith("holds no run", "status", "--out", typo);
        Assert.False(Directory.Exists(typo));

        // A checkpoint whose checkpoint.json is empty.
        var checkpoint = Path.Combine(_root, "checkpoints", "x", "step-0000001");
        Directory.CreateDirectory(checkpoint);
        File.WriteAllText(Path.Combine(checkpoint, "checkpoint.json"), "");
        File.WriteAllBytes(Path.Combine(checkpoint, "model.bin"), [1, 2, 3]);
        await FailsWith("checkpoint.json is not readable", "export", "--checkpoint", checkpoint, "--out", Path.Combine(_root, "export"));

        // pipeline run: arguments checked before anything starts.
        var run = Path.Combine(_root, "run");
        await FailsWith("--steps -1", "run", "--steps", "-1", "--out", run);
        await FailsWith("--vocab 10", "run", "--vocab", "10", "--out", run);
        await FailsWith("--max-pages 0", "run", "--max-pages", "0", "--out", run);
        await FailsWith("--release: release target 'gguf:q5_k'", "run", "--release", "int8,gguf:q5_k", "--out", run);
        await FailsWith("--align 'kto': not an alignment method", "run", "--align", "sft,kto", "--out", run);
        await FailsWith("--align ppo,sft: 'sft' comes too late", "run", "--align", "ppo,sft", "--out", run);
        await FailsWith("--services none", "run", "--services", "none", "--out", run);
        Assert.False(Directory.Exists(Path.Combine(run, "shards")));
    }

    [Fact(Timeout = 240_000)]
    public async Task A_crawl_that_stores_nothing_fails()
    {
        // Regression: a crawl of only refused seeds (here a file:// seed) stored 0 pages and exited 0.
        var outDir = Path.Combine(_root, "crawl");
        await FailsWith("no page was stored", "crawl", "--seed", "file:///etc/passwd", "--out", outDir);
    }

    [Fact(Timeout = 240_000)]
    public async Task A_full_disk_is_one_line_saying_so_and_what_finished_is_kept()
    {
        // Regression (#26): `clean` onto a full disk crashed with "SQLite Error 10: 'disk I/O error'" and a stack trace.
        // A small disk (tmpfs), filled up after the first shard is done, with room left for less than a shard.
        // Two shards of the sample site's English and Japanese pages (real text, which the recipe keeps).
        var input = new ShardStore(Path.Combine(_root, "in"));
        var files = Directory.GetFiles(SampleSite.Folder(), "*.html", SearchOption.AllDirectories).Where(p => p.Contains("/en/") || p.Contains("/ja/")).Order(StringComparer.Ordinal).ToList();
        var half = (files.Count + 1) / 2;
        for (var shard = 1; shard <= 2; shard++)
        {
            var pages = files.Skip((shard - 1) * half).Take(half).Select(file =>
            {
                var url = "http://sample.test/" + Path.GetRelativePath(SampleSite.Folder(), file);
                return new RawPage { Url = url, FinalUrl = url, Status = 200, ContentType = "text/html", Html = File.ReadAllText(file) };
            }).ToList();
            await input.WriteParquetAsync($"raw/raw-{shard}.parquet", pages, new ShardDescriptor($"r{shard}", "crawl", "", [], "t"));
        }
        string Raw(int shard) => Path.Combine(_root, "in", "raw", $"raw-{shard}.parquet");

        var disk = Path.Combine(_root, "disk");
        Directory.CreateDirectory(disk);
        var mount = await RunToolAsync("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", disk);
        if (mount.Exit != 0 && Environment.UserName != "root") return; // only root mounts a small disk; CI runs as root
        Assert.True(mount.Exit == 0, $"mount: {mount.Output}");
        try
        {
            var outDir = Path.Combine(disk, "out");
            var (exit, stdout, stderr) = await RunAsync("clean", Raw(1), "--out", outDir);
            Assert.True(exit == 0, stdout + stderr);
            var shardOutput = Directory.GetFiles(Path.Combine(outDir, "shards"), "clean-*.parquet", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
            Assert.True(shardOutput > 64 * 1024, $"the first shard's output is {shardOutput} bytes");
            var filler = Path.Combine(disk, "filler");
            await using (var fill = File.Create(filler))
            {
                var block = new byte[4096];
                try
                {
                    while (new DriveInfo(disk).AvailableFreeSpace > 48 * 1024) fill.Write(block);
                    fill.Flush();
                }
                catch (IOException)
                {
                    // Full already: the point.
                }
            }

            var (fullExit, fullOut, fullError) = await RunAsync("clean", Raw(1), Raw(2), "--out", outDir);
            Assert.True(fullExit == 2, $"exit {fullExit}:\n{fullOut}\n{fullError}");
            var error = Assert.Single(fullError.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("error: "));
            Assert.Contains($"no space left on the disk of '{outDir}'", error);
            Assert.DoesNotContain("   at ", fullError + fullOut);

            // With room again, the same command finishes, and the shard done before the disk filled is not done again.
            File.Delete(filler);
            var (again, againOut, againError) = await RunAsync("clean", Raw(1), Raw(2), "--out", outDir);
            Assert.True(again == 0, againOut + againError);
            Assert.Contains("raw-1.parquet already done", againOut + againError);
            Assert.Equal(2, Directory.GetFiles(Path.Combine(outDir, "shards"), "clean-*.parquet", SearchOption.AllDirectories).Length);
        }
        finally
        {
            await RunToolAsync("umount", disk);
        }
    }

    private static async Task<(int Exit, string Output)> RunToolAsync(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await output + await error);
    }

    public void Dispose() => Directory.Delete(_root, true);
}
