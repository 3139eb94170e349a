using System.Diagnostics;
using Pipeline.Tests.Shared;

namespace Pipeline.Cli.Tests;

/// <summary>`pipeline ablate` with its training done by a trainer service on another "host" (its own process and folder), over RabbitMQ, S3 and PostgreSQL.</summary>
[Collection("end-to-end")]
public sealed class AblationTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("ablation-").FullName;
    private readonly S3TestBucket _bucket = new();
    private readonly PostgresTestDatabase _ledgerDatabase = new();
    private readonly RabbitMqBroker _broker = new();
    private Process? _trainer;

    private Dictionary<string, string?> Settings => new(_broker.Settings.Concat(_bucket.Settings))
    {
        ["Pipeline:Ledger:ConnectionString"] = _ledgerDatabase.ConnectionString,
    };

    [Fact(Timeout = 300_000)]
    [Trait("Category", "RabbitMq")]
    [Trait("Category", "Postgres")]
    [Trait("Category", "S3")]
    public async Task The_arms_train_on_a_trainer_service_elsewhere_and_the_report_compares_them()
    {
        await _broker.RequireAsync();
        var environment = new Dictionary<string, string?>(RabbitMqBroker.AsEnvironment(Settings).Concat(S3TestBucket.CredentialEnvironment));
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        _trainer = PipelineProcess.Start(["serve", "trainer", "--out", Path.Combine(_root, "trainer")], [], environment, log.Enqueue);

        // The raw pages: the sample site as a WARC, read by `pipeline crawl` into the ablation's own folder.
        var here = Path.Combine(_root, "ablation");
        var warc = Path.Combine(_root, "site.warc.gz");
        SampleWarc.Write(warc);
        var (exit, stdout, stderr) = await BadInputTests.RunAsync(["crawl", "--warc", warc, "--out", here, "--set", "Pipeline:Crawler:PagesPerShard=100"]);
        Assert.True(exit == 0, stdout + stderr);

        // No trainer in this process (--services none): only the one started above can train the arms. Semantic dedup
        // with D4's pruning is the second arm, so the two keep different documents.
        (exit, stdout, stderr) = await BadInputTests.RunAsync(environment, ["ablate", Path.Combine(here, "shards", "crawl"), "--name", "remote", "--arm", "default",
            "--arm", "pruned:Pipeline:SemanticDedup:Enabled=true,Pipeline:SemanticDedup:PrototypeFraction=0.2", "--steps", "10", "--vocab", "400",
            "--eval-tasks", "none", "--services", "none", "--out", here]);
        Assert.True(exit == 0, $"{stdout}\n{stderr}\ntrainer:\n{string.Join('\n', log)}");
        var report = File.ReadAllText(Path.Combine(here, "reports", "ablation.md"));
        var documents = System.Text.RegularExpressions.Regex.Matches(report, @"\| (default|pruned) \| [^|]+ \| ([\d,]+) \|").ToDictionary(m => m.Groups[1].Value, m => long.Parse(m.Groups[2].Value.Replace(",", "")));
        Assert.True(documents["pruned"] < documents["default"], report);
        Assert.Contains("| remote_heldout | bits_per_byte | pruned − default |", report);
        // The trainer service trained both, in its own folder; the ablation fetched the checkpoints through S3.
        Assert.True(Directory.Exists(Path.Combine(_root, "trainer", "checkpoints", "remote-default-s1")));
        Assert.True(Directory.Exists(Path.Combine(_root, "trainer", "checkpoints", "remote-pruned-s1")));
    }

    public void Dispose()
    {
        if (_trainer is { HasExited: false }) _trainer.Kill(entireProcessTree: true);
        _trainer?.Dispose();
        _ledgerDatabase.Dispose();
        _broker.Dispose();
        Directory.Delete(_root, recursive: true);
    }
}

/// <summary>The shipped sample site's English and Japanese pages as one WARC file, as a crawl of it would have stored them.</summary>
internal static class SampleWarc
{
    /// <summary>Writes the WARC; returns the number of pages in it.</summary>
    public static int Write(string path)
    {
        var pages = Directory.GetFiles(SampleSite.Folder(), "*.html", SearchOption.AllDirectories).Where(p => p.Contains("/en/") || p.Contains("/ja/")).Order(StringComparer.Ordinal).ToList();
        using var writer = new Crawler.Warc.WarcWriter(File.Create(path));
        foreach (var page in pages)
            writer.WriteResponse("http://sample.test/" + Path.GetRelativePath(SampleSite.Folder(), page), DateTime.UtcNow, 200, "text/html; charset=utf-8", File.ReadAllBytes(page));
        return pages.Count;
    }
}
