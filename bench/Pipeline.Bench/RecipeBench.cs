using Pipeline.Cleaner;

namespace Pipeline.Bench;

/// <summary>
/// Every shipped recipe on real documentation pages (bench/build-docs-pages.py OUT) and on the junk fixture
/// (tests/Cleaner.Tests/Junk): the share of documentation pages kept, per generator, and of junk pages removed.
/// Pages the language step removes (neither English nor Japanese) or that extract to nothing count as removed for
/// every recipe alike. Arguments: OUT [JUNK folder].
/// </summary>
public static class RecipeBench
{
    private static readonly string[] Recipes = ["default", "default-en", "fineweb", "refinedweb", "gopher", "c4", "swallow", "llm-jp", "strict"];

    public static Task RunAsync(string[] args)
    {
        var docs = args.Length > 0 ? args[0] : throw new ArgumentException("usage: recipes OUT [JUNK] (OUT built by bench/build-docs-pages.py OUT)");
        var junk = args.Length > 1 ? args[1] : "tests/Cleaner.Tests/Junk";
        var generators = Directory.GetDirectories(docs).Select(Path.GetFileName).Order().ToList();
        var pages = generators.ToDictionary(g => g!, g => Directory.GetFiles(Path.Combine(docs, g!), "*.html", SearchOption.AllDirectories).Order().Select(File.ReadAllText).ToList());
        var junkPages = Directory.GetFiles(junk, "*.html").Order().Select(p => (Kind: Path.GetFileName(p).Split('-')[0], Html: File.ReadAllText(p))).ToList();

        Console.WriteLine($"| recipe | docs kept ({pages.Values.Sum(p => p.Count)}) | {string.Join(" | ", generators.Select(g => $"{g} ({pages[g!].Count})"))} | junk removed ({junkPages.Count}) | junk kept, by kind |");
        Console.WriteLine($"|---|---|{string.Concat(generators.Select(_ => "---|"))}---|---|");
        foreach (var recipe in Recipes)
        {
            // Every language a recipe has steps for: the Japanese-only recipes judge English pages with the same steps.
            var cleaner = new DocumentCleaner(new CleanerOptions { Recipe = recipe }, ShardCleaner.LoadNgWords(""));
            var outcomes = generators.ToDictionary(g => g!, g => pages[g!].AsParallel().AsOrdered().Select(p => cleaner.Clean("d", "u", p)).ToList());
            var kept = outcomes.ToDictionary(o => o.Key, o => o.Value.Count(x => x.Document is not null));
            var removedBy = outcomes.Values.SelectMany(o => o).Where(o => o.Document is null).GroupBy(o => $"{o.RemovedBy}: {o.Detail}").OrderByDescending(g => g.Count()).Take(6);
            Console.Error.WriteLine($"{recipe} removed docs by: {string.Join("; ", removedBy.Select(g => $"{g.Key} {g.Count()}"))}");
            var junkKept = junkPages.Where(p => cleaner.Clean("j", "u", p.Html).Document is not null).ToList();
            var docsTotal = pages.Values.Sum(p => p.Count);
            Console.WriteLine($"| {recipe} | {(double)kept.Values.Sum() / docsTotal:P0} | {string.Join(" | ", generators.Select(g => $"{(double)kept[g!] / pages[g!].Count:P0}"))} | " +
                              $"{1 - (double)junkKept.Count / junkPages.Count:P0} | {string.Join(", ", junkKept.GroupBy(p => p.Kind).Select(g => $"{g.Key} {g.Count()}"))} |");
        }
        return Task.CompletedTask;
    }
}
