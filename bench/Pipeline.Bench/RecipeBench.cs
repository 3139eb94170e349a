using Pipeline.Cleaner;

namespace Pipeline.Bench;

/// <summary>
/// Every shipped recipe on real documentation pages (bench/build-docs-pages.py OUT) and on the junk fixture
/// (tests/Cleaner.Tests/Junk): the share of documentation pages kept, per generator, and of junk pages removed.
/// Pages the language step removes (neither English nor Japanese) or that extract to nothing count as removed for
/// every recipe alike. Each page's language is what it declares (lang="ja", a .ja. or ja-JP path; the man pages are
/// Japanese), so the keep rate per language does not depend on the language step under test. Arguments: OUT [JUNK folder [RECIPE ...]].
/// </summary>
public static class RecipeBench
{
    private static readonly string[] Recipes = ["default", "default-en", "default-ja", "fineweb", "refinedweb", "gopher", "c4", "swallow", "llm-jp", "strict"];

    public static Task RunAsync(string[] args)
    {
        var docs = args.Length > 0 ? args[0] : throw new ArgumentException("usage: recipes OUT [JUNK] (OUT built by bench/build-docs-pages.py OUT)");
        var junk = args.Length > 1 ? args[1] : "tests/Cleaner.Tests/Junk";
        // Recipes named after the junk folder (names or .json files) replace the shipped list: a candidate recipe is
        // measured beside the default without being shipped.
        var recipes = args.Length > 2 ? args[2..] : Recipes;
        var generators = Directory.GetDirectories(docs).Select(Path.GetFileName).Order().ToList();
        var files = generators.ToDictionary(g => g!, g => Directory.GetFiles(Path.Combine(docs, g!), "*.html", SearchOption.AllDirectories).Order().ToList());
        var pages = files.ToDictionary(f => f.Key, f => f.Value.Select(File.ReadAllText).ToList());
        var languageOf = files.ToDictionary(f => f.Key, f => f.Value.Select((path, i) => DeclaredLanguage(Path.GetRelativePath(docs, path), pages[f.Key][i])).ToList());
        var languages = languageOf.Values.SelectMany(l => l).Distinct().Order().ToList();
        var junkPages = Directory.GetFiles(junk, "*.html").Order().Select(p => (Kind: Path.GetFileName(p).Split('-')[0], Html: File.ReadAllText(p))).ToList();

        int PagesIn(string language) => languageOf.Values.Sum(l => l.Count(x => x == language));
        Console.WriteLine($"| recipe | docs kept ({pages.Values.Sum(p => p.Count)}) | {string.Join(" | ", languages.Select(l => $"{l} ({PagesIn(l)})"))} | {string.Join(" | ", generators.Select(g => $"{g} ({pages[g!].Count})"))} | junk removed ({junkPages.Count}) | junk kept, by kind |");
        Console.WriteLine($"|---|---|{string.Concat(languages.Select(_ => "---|"))}{string.Concat(generators.Select(_ => "---|"))}---|---|");
        foreach (var recipe in recipes)
        {
            // Every language a recipe has steps for: the Japanese-only recipes judge English pages with the same steps.
            var cleaner = new DocumentCleaner(new CleanerOptions { Recipe = recipe }, ShardCleaner.LoadNgWords(""));
            var outcomes = generators.ToDictionary(g => g!, g => pages[g!].AsParallel().AsOrdered().Select(p => cleaner.Clean("d", "u", p)).ToList());
            var kept = outcomes.ToDictionary(o => o.Key, o => o.Value.Count(x => x.Document is not null));
            var byLanguage = outcomes.SelectMany(o => o.Value.Select((x, i) => (Language: languageOf[o.Key][i], Outcome: x, Path: Path.GetRelativePath(docs, files[o.Key][i])))).ToList();
            foreach (var language in languages)
            {
                var removedBy = byLanguage.Where(x => x.Language == language && x.Outcome.Document is null).GroupBy(x => $"{x.Outcome.RemovedBy}: {x.Outcome.Detail}")
                    .OrderByDescending(g => g.Count()).Take(6);
                Console.Error.WriteLine($"{recipe} removed {language} docs by: {string.Join("; ", removedBy.Select(g => $"{g.Key} {g.Count()} (e.g. {string.Join(", ", g.Take(3).Select(x => x.Path))})"))}");
            }
            string KeptIn(string language) => $"{(double)byLanguage.Count(x => x.Language == language && x.Outcome.Document is not null) / PagesIn(language):P0}";
            var junkOutcomes = junkPages.Select(p => (p.Kind, Outcome: cleaner.Clean("j", "u", p.Html))).ToList();
            var junkKept = junkOutcomes.Where(p => p.Outcome.Document is not null).ToList();
            Console.Error.WriteLine($"{recipe} removed junk by: {string.Join("; ", junkOutcomes.Where(p => p.Outcome.Document is null).GroupBy(p => $"{p.Outcome.RemovedBy}: {p.Outcome.Detail}").OrderByDescending(g => g.Count()).Select(g => $"{g.Key} {g.Count()} ({string.Join(", ", g.GroupBy(x => x.Kind).Select(k => $"{k.Key} {k.Count()}"))})"))}");
            var docsTotal = pages.Values.Sum(p => p.Count);
            Console.WriteLine($"| {recipe} | {(double)kept.Values.Sum() / docsTotal:P0} | {string.Join(" | ", languages.Select(KeptIn))} | {string.Join(" | ", generators.Select(g => $"{(double)kept[g!] / pages[g!].Count:P0}"))} | " +
                              $"{1 - (double)junkKept.Count / junkPages.Count:P0} | {string.Join(", ", junkKept.GroupBy(p => p.Kind).Select(g => $"{g.Key} {g.Count()}"))} |");
        }
        return Task.CompletedTask;
    }

    private static string DeclaredLanguage(string path, string html) =>
        path.StartsWith("man/", StringComparison.Ordinal) || path.Contains(".ja.", StringComparison.Ordinal) || path.Contains("/ja-JP/", StringComparison.Ordinal)
        || System.Text.RegularExpressions.Regex.IsMatch(html[..Math.Min(html.Length, 2000)], "<html[^>]*\\blang=\"ja", System.Text.RegularExpressions.RegexOptions.IgnoreCase)
            ? "ja" : "en";
}
