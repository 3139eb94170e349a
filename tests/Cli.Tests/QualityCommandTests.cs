using System.Text.Json;

namespace Pipeline.Cli.Tests;

/// <summary>`pipeline quality train` and `score` from the command line, on the sample site's pages and junk pages.</summary>
public sealed class QualityCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("quality-").FullName;

    private static string Repo([System.Runtime.CompilerServices.CallerFilePath] string file = "") => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(file)!, "..", ".."));

    [Fact(Timeout = 240_000)]
    public async Task A_classifier_trained_from_the_command_line_scores_held_out_pages_above_junk()
    {
        // Positives as JSONL (texts of the English sample pages), negatives as HTML pages (the junk fixture's English ones).
        var site = Directory.GetFiles(Path.Combine(Repo(), "samples", "site", "en"), "*.html").Order(StringComparer.Ordinal).ToList();
        // The junk fixture's English pages of the kinds it had when this test was written (a kind added later, such as
        // the prose-like doorway pages, would change what a classifier trained on a few dozen pages can separate).
        string[] kinds = ["boilerplate", "keywords", "lorem", "repeated", "navigation", "listing"];
        var junk = Directory.GetFiles(Path.Combine(Repo(), "tests", "Cleaner.Tests", "Junk"), "*-en-*.html").Order(StringComparer.Ordinal)
            .Where(p => kinds.Contains(Path.GetFileName(p).Split('-')[0])).ToList();
        var positives = Path.Combine(_root, "docs.jsonl");
        File.WriteAllLines(positives, site.Where((_, i) => i % 4 != 0).Select(p => JsonSerializer.Serialize(new { id = Path.GetFileName(p), text = Cleaner.TextExtractor.Extract(File.ReadAllText(p)).Text })));
        var negatives = Path.Combine(_root, "junk");
        Directory.CreateDirectory(negatives);
        foreach (var page in junk.Where((_, i) => i % 4 != 0)) File.Copy(page, Path.Combine(negatives, Path.GetFileName(page)));

        var model = Path.Combine(_root, "model");
        var (exit, stdout, stderr) = await BadInputTests.RunAsync("quality", "train", "--positive", positives, "--negative", negatives, "--out", model);
        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains("held-out ROC AUC", stdout);

        var heldOut = site.Where((_, i) => i % 4 == 0).Concat(junk.Where((_, i) => i % 4 == 0)).ToArray();
        var scores = Path.Combine(_root, "scores.jsonl");
        (exit, stdout, stderr) = await BadInputTests.RunAsync(["quality", "score", "--model", model, .. heldOut, "--out", scores]);
        Assert.True(exit == 0, stdout + stderr);
        var scored = File.ReadAllLines(scores).Select(l => JsonDocument.Parse(l).RootElement).Select(e => (Id: e.GetProperty("id").GetString()!, Score: e.GetProperty("score").GetDouble())).ToList();
        Assert.Equal(heldOut, scored.Select(s => s.Id));
        var lowestPage = scored.Where(s => s.Id.Contains("/samples/site/")).Min(s => s.Score);
        var highestJunk = scored.Where(s => s.Id.Contains("/Junk/")).Max(s => s.Score);
        Assert.True(lowestPage > highestJunk, $"lowest page {lowestPage}, highest junk {highestJunk}");

        // Bad input: one error line naming it.
        File.WriteAllText(Path.Combine(_root, "bad.jsonl"), "{\"id\": 1}\n");
        await BadInputTests.FailsWith(null, "bad.jsonl:1: no \"text\" string", "quality", "score", "--model", model, Path.Combine(_root, "bad.jsonl"), "--out", scores);
        await BadInputTests.FailsWith(null, "no model.zip", "quality", "score", "--model", _root, positives, "--out", scores);
        await BadInputTests.FailsWith(null, "--holdout 1", "quality", "train", "--positive", positives, "--negative", negatives, "--holdout", "1", "--out", model);
        await BadInputTests.FailsWith(null, "--negatives 1", "quality", "train", "--positive", positives, "--negative", negatives, "--negatives", "1", "--out", model);

        // DCLM's way: negatives sampled from the crawl (here 10 of the junk pages), as many as asked for.
        (exit, stdout, stderr) = await BadInputTests.RunAsync("quality", "train", "--positive", positives, "--negative", negatives, "--negatives", "10", "--out", Path.Combine(_root, "sampled"));
        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains("and 10 negative documents", stdout);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
