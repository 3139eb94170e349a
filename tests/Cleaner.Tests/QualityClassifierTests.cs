using Pipeline.Cleaner.Quality;

namespace Pipeline.Cleaner.Tests;

public sealed class QualityClassifierTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("quality-").FullName;

    private static string Text(string path) => TextExtractor.Extract(File.ReadAllText(path)).Text;

    /// <summary>The area under the ROC curve: how often a positive scores above a negative (ties count half).</summary>
    private static double RocAuc(IReadOnlyList<float> positives, IReadOnlyList<float> negatives) =>
        positives.Sum(p => negatives.Sum(n => p > n ? 1.0 : p == n ? 0.5 : 0)) / (positives.Count * (double)negatives.Count);

    [Fact]
    public void Real_documentation_scores_above_kinds_of_junk_the_classifier_never_saw()
    {
        // Positives: the sample site's real pages, English and Japanese (every third held out). Negatives: four kinds
        // of junk page; the other kinds (listings, repeated text, katakana SEO pages) are never trained on.
        var pages = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "fixtures", "site"), "*.html", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal).Select(Text).Where(t => t.Length > 500).ToList();
        var junk = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Junk"), "*.html").Order(StringComparer.Ordinal)
            .Select(p => (Kind: Path.GetFileName(p).Split('-')[0], Text: Text(p))).ToList();
        string[] trained = ["boilerplate", "keywords", "lorem", "navigation"];
        var classifier = QualityClassifier.Train(
            pages.Where((_, i) => i % 3 != 0).ToList(),
            junk.Where(j => trained.Contains(j.Kind)).Select(j => j.Text).ToList());
        Assert.True(classifier.Info.HeldOutRocAuc >= 0.95, $"held-out AUC {classifier.Info.HeldOutRocAuc}");

        var heldOutPages = pages.Where((_, i) => i % 3 == 0).ToList();
        var unseenJunk = junk.Where(j => !trained.Contains(j.Kind)).Select(j => j.Text).ToList();
        Assert.Contains(heldOutPages, p => p.Any(c => c is >= 'ぁ' and <= 'ゖ')); // both languages are held out
        var auc = RocAuc(classifier.Score(heldOutPages), classifier.Score(unseenJunk));
        Assert.True(auc >= 0.95, $"AUC on unseen kinds of junk {auc:F3}");

        // Saved and loaded, it scores the same.
        classifier.Save(Path.Combine(_root, "model"));
        var loaded = QualityClassifier.Load(Path.Combine(_root, "model"));
        Assert.Equal(classifier.Score(unseenJunk), loaded.Score(unseenJunk));
        Assert.Equal(classifier.Info, loaded.Info);
    }

    [Fact]
    public void A_recipe_step_keeps_what_the_classifier_scores_over_its_threshold()
    {
        // A recipe of one step, DCLM's: the classifier trained on English sample pages against English junk.
        var pages = Fixtures.Pages("en").Select(Text).ToList();
        // The kinds of junk the fixture had when this test was written, so that a kind added later does not move it.
        string[] kinds = ["boilerplate", "keywords", "lorem", "repeated", "navigation", "listing"];
        var junk = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Junk"), "*-en-*.html").Order(StringComparer.Ordinal)
            .Where(p => kinds.Contains(Path.GetFileName(p).Split('-')[0])).Select(p => (Path: p, Text: Text(p))).ToList();
        var model = Path.Combine(_root, "model");
        QualityClassifier.Train(pages.Where((_, i) => i % 2 == 0).ToList(), junk.Where((_, i) => i % 2 == 0).Select(j => j.Text).ToList(), holdout: 0).Save(model);
        var recipe = Path.Combine(_root, "dclm.json");
        File.WriteAllText(recipe, $$"""{ "description": "d", "steps": [ { "filter": "quality", "settings": { "Model": {{System.Text.Json.JsonSerializer.Serialize(model)}}, "Threshold": 0.5 } } ] }""");
        var cleaner = new DocumentCleaner(new CleanerOptions { Recipe = recipe, Languages = ["en"] }, []);
        var keptPages = Fixtures.Pages("en").Where((_, i) => i % 2 == 1).Count(p => cleaner.Clean("d", "u", File.ReadAllText(p)).Document is not null);
        var removedJunk = junk.Where((_, i) => i % 2 == 1).Select(j => cleaner.Clean("d", "u", File.ReadAllText(j.Path))).ToList();
        Assert.Equal(Fixtures.Pages("en").Length / 2, keptPages);
        // A kept document carries its score into the clean shard's QualityScore column; without the step it is NaN.
        var page = File.ReadAllText(Fixtures.Pages("en")[1]);
        Assert.InRange(cleaner.Clean("d", "u", page).Document!.QualityScore, 0.5, 1.0);
        Assert.True(double.IsNaN(new DocumentCleaner(new CleanerOptions { Languages = ["en"] }, []).Clean("d", "u", page).Document!.QualityScore));
        // Junk that the language step lets through is removed by the classifier.
        Assert.All(removedJunk, o => Assert.Contains(o.RemovedBy, new[] { "quality", "language" }));
        Assert.Contains(removedJunk, o => (o.RemovedBy, o.Detail) == ("quality", "score under threshold"));

        // DCLM's way: keep a top fraction of the crawl, the threshold read from the crawl sample's (the negatives') scores.
        var info = QualityClassifier.Load(model).Info;
        Assert.Equal(101, info.CrawlScorePercentiles!.Length);
        Assert.Equal(info.CrawlScorePercentiles[90], info.ThresholdForTop(0.1), 6);
        Assert.Equal(info.CrawlScorePercentiles[100], info.ThresholdForTop(0));
        Assert.True(info.ThresholdForTop(0.5) <= info.ThresholdForTop(0.1));
        File.WriteAllText(recipe, $$"""{ "description": "d", "steps": [ { "filter": "quality", "settings": { "Model": {{System.Text.Json.JsonSerializer.Serialize(model)}}, "KeepTopFraction": 0.1 } } ] }""");
        var top = new DocumentCleaner(new CleanerOptions { Recipe = recipe, Languages = ["en"] }, []);
        Assert.Equal(keptPages, Fixtures.Pages("en").Where((_, i) => i % 2 == 1).Count(p => top.Clean("d", "u", File.ReadAllText(p)).Document is not null));

        // A step without a model, or with one that is not there, fails when the recipe is read, naming the step.
        File.WriteAllText(recipe, """{ "description": "d", "steps": [ { "filter": "quality" } ] }""");
        Assert.Contains("steps[0]: the quality step needs settings:Model", Assert.Throws<ArgumentException>(() => new DocumentCleaner(new CleanerOptions { Recipe = recipe }, [])).Message);
        File.WriteAllText(recipe, """{ "description": "d", "steps": [ { "filter": "quality", "settings": { "Model": "/nonexistent/model" } } ] }""");
        Assert.Contains("/nonexistent/model", Assert.Throws<ArgumentException>(() => new DocumentCleaner(new CleanerOptions { Recipe = recipe }, [])).Message);
    }

    [Fact]
    public void A_missing_or_damaged_model_is_one_error_naming_it()
    {
        var missing = Assert.Throws<FileNotFoundException>(() => QualityClassifier.Load(Path.Combine(_root, "none")));
        Assert.Contains("none", missing.Message);
        Directory.CreateDirectory(Path.Combine(_root, "bad"));
        File.WriteAllText(Path.Combine(_root, "bad", "model.zip"), "not a model");
        var damaged = Assert.Throws<InvalidDataException>(() => QualityClassifier.Load(Path.Combine(_root, "bad")));
        Assert.Contains("model.zip", damaged.Message);
        Assert.Throws<ArgumentException>(() => QualityClassifier.Train(["only positives"], []));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
