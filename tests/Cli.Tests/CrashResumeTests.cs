using System.Diagnostics;
using Microsoft.Data.Sqlite;

namespace Pipeline.Cli.Tests;

/// <summary>kill -9 of `pipeline run` at two points, then a rerun: the same outputs as a run that was never killed.</summary>
[Collection("end-to-end")]
public sealed class CrashResumeTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("crash-").FullName;

    private static readonly string[] Settings = ["Pipeline:Crawler:PerHostConcurrency=1"];

    private static EmbeddedRunOptions Options(string outDir) => EndToEndTests.SmallRun(outDir) with
    {
        MaxPages = 1000,
        Steps = 30,
        Settings = Settings.ToDictionary(s => s.Split('=')[0], s => (string?)s.Split('=')[1]),
    };

    private static Process Start(string outDir) => PipelineProcess.Start(
        ["run", "--run", "sample", "--out", outDir, "--max-pages", "1000", "--vocab", "400", "--steps", "30", "--quiet", "--eval-tasks", "none"], Settings);

    private static long Count(string outDir, string sql)
    {
        var path = Path.Combine(outDir, "ledger.db");
        if (!File.Exists(path)) return 0;
        try
        {
            using var db = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
            db.Open();
            using var command = db.CreateCommand();
            command.CommandText = sql;
            return Convert.ToInt64(command.ExecuteScalar());
        }
        catch (SqliteException)
        {
            return 0; // the table does not exist yet
        }
    }

    private static async Task KillWhen(Process process, Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (!condition())
        {
            Assert.False(process.HasExited, "the run finished before the kill point was reached");
            Assert.True(DateTime.UtcNow < deadline, "kill point not reached in time");
            await Task.Delay(50);
        }
        process.Kill(entireProcessTree: true); // SIGKILL: no shutdown code runs
        await process.WaitForExitAsync();
    }

    [Fact(Timeout = 600_000)]
    public async Task A_killed_run_resumes_to_the_same_outputs()
    {
        var reference = Path.Combine(_root, "reference");
        await EmbeddedRun.RunAsync(Options(reference), default);
        var expected = await RunAssertions.CheckAsync(reference);

        var crashed = Path.Combine(_root, "crashed");
        // Serve the site on the reference run's port: URLs, and so document ids and the train/validation split, match.
        Directory.CreateDirectory(crashed);
        File.Copy(Path.Combine(reference, "sample-site.port"), Path.Combine(crashed, "sample-site.port"));
        // Kill 1: as soon as the first raw shard is in the ledger (mid-crawl, before cleaning has finished).
        await KillWhen(Start(crashed), () => Count(crashed, "SELECT COUNT(*) FROM shards WHERE stage='crawl'") >= 1);
        // Kill 2: mid-training, once a checkpoint exists.
        await KillWhen(Start(crashed), () => Directory.Exists(Path.Combine(crashed, "checkpoints")) &&
            Directory.GetDirectories(Path.Combine(crashed, "checkpoints"), "step-*", SearchOption.AllDirectories).Length > 0);
        await EmbeddedRun.RunAsync(Options(crashed), default);
        var actual = await RunAssertions.CheckAsync(crashed);

        Assert.Equal(expected.CrawledUrls.Order(StringComparer.Ordinal), actual.CrawledUrls.Order(StringComparer.Ordinal));
        // The same documents tokenized the same way by the same tokenizer, whichever copy of a duplicate the crawl
        // fetched first; the token stream's order may differ, and the resumed training follows the same curve
        // (TrainingRunTests).
        Assert.Equal((expected.TokenRows, expected.TokenContent, expected.TokenizerHash), (actual.TokenRows, actual.TokenContent, actual.TokenizerHash));
        Assert.True(double.IsFinite(actual.FinalLoss) && Math.Abs(actual.FinalLoss - expected.FinalLoss) < 0.5,
            $"final validation loss {actual.FinalLoss} vs {expected.FinalLoss}");
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
