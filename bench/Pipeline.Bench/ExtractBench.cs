using System.Diagnostics;
using System.Text;
using AngleSharp.Html.Parser;
using Pipeline.Cleaner;

namespace Pipeline.Bench;

/// <summary>
/// Extraction quality and cleaner throughput on real documentation HTML (bench/build-docs-pages.py OUT builds it).
/// For each page the reference is the text of its generator's main-content element (OUT/main-content.tsv). Text is
/// compared as a bag of units: a run of Latin letters or digits is one unit, every kana or kanji one unit.
/// Recall: the reference's units found in the extraction. Boilerplate: the extraction's units not in the reference.
/// Then one core cleans every page with the default recipe, timing each part, and each part's cost per character
/// on the largest pages against the smallest (a part whose cost per character grows with page size is superlinear).
/// Arguments: OUT folder.
/// </summary>
public static class ExtractBench
{
    public static Task RunAsync(string[] args)
    {
        var root = args.Length > 0 ? args[0] : throw new ArgumentException("usage: extract OUT [--others DIR] (OUT built by bench/build-docs-pages.py OUT, DIR by bench/extract-others.py OUT DIR)");
        var others = args.Length > 2 && args[1] == "--others" ? args[2] : null;
        // generator -> (main-content selector, elements inside it that are not main text)
        var selectors = File.ReadAllLines(Path.Combine(root, "main-content.tsv")).Select(l => l.Split('\t')).ToDictionary(p => p[0], p => (Main: p[1], Exclude: p.Length > 2 ? p[2] : null));
        var parser = new HtmlParser();
        var rows = new List<(string Generator, string Path, long Bytes, int Reference, int Extracted, int Matched, int ReferenceChars, int ExtractedChars)>();
        var tools = others is null ? [] : Directory.GetDirectories(others).Select(Path.GetFileName).OfType<string>().Order().ToList();
        var toolRows = tools.ToDictionary(t => t, _ => new List<(string Generator, string Path, int Reference, int Extracted, int Matched)>());
        foreach (var (generator, (selector, exclude)) in selectors)
        {
            foreach (var path in Directory.GetFiles(Path.Combine(root, generator), "*.html", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                var html = File.ReadAllText(path);
                using var document = parser.ParseDocument(html);
                foreach (var e in document.QuerySelectorAll("script,style,svg" + (exclude is null ? "" : "," + exclude)).ToList()) e.Remove();
                var reference = string.Join('\n', document.QuerySelectorAll(selector).Select(e => e.TextContent));
                var extracted = TextExtractor.Extract(html).Text;
                var referenceUnits = Units(reference);
                var (r, x, m) = Compare(referenceUnits, Units(extracted));
                foreach (var tool in tools)
                {
                    var file = Path.Combine(others!, tool, Path.GetRelativePath(root, path) + ".txt");
                    var (tr, tx, tm) = Compare(referenceUnits, Units(File.Exists(file) ? File.ReadAllText(file) : ""));
                    toolRows[tool].Add((generator, Path.GetRelativePath(root, path), tr, tx, tm));
                }
                rows.Add((generator, Path.GetRelativePath(root, path), Encoding.UTF8.GetByteCount(html), r, x, m,
                    TextNormalizer.Normalize(reference, true).Count(c => !char.IsWhiteSpace(c)), extracted.Length));
            }
        }

        Console.WriteLine("| pages | generator | main-text recall | boilerplate in output | empty (2,000+ chars of main text) |");
        Console.WriteLine("|---|---|---|---|---|");
        // Generators with a folder per language (publican/en-US, publican/ja-JP) also show each language.
        var languages = rows.Where(r => System.Text.RegularExpressions.Regex.IsMatch(r.Path, "^[^/]+/[a-z]{2}-[A-Z]{2}/"))
            .GroupBy(r => string.Join('/', r.Path.Split('/')[..2]));
        foreach (var group in rows.GroupBy(r => r.Generator).Concat(languages).Append(rows.GroupBy(_ => "all").Single()))
        {
            var recall = (double)group.Sum(r => r.Matched) / group.Sum(r => r.Reference);
            var boilerplate = 1 - (double)group.Sum(r => r.Matched) / group.Sum(r => r.Extracted);
            var empty = group.Count(r => r.ReferenceChars >= 2000 && r.ExtractedChars == 0);
            Console.WriteLine($"| {group.Count()} | {group.Key} | {recall:F3} | {boilerplate:P1} | {empty} |");
        }
        if (tools.Count > 0)
        {
            // Recall and precision of the units, per generator and language, this project beside the yardsticks.
            var extractors = toolRows.Select(t => (Name: t.Key, Rows: t.Value)).Prepend((Name: "this project", Rows: rows.Select(r => (r.Generator, r.Path, r.Reference, r.Extracted, r.Matched)).ToList())).ToList();
            static string GroupOf(string path) => System.Text.RegularExpressions.Regex.Match(path, "^[^/]+/[a-z]{2}-[A-Z]{2}/").Success ? string.Join('/', path.Split('/')[..2]) : path.Split('/')[0];
            var groups = rows.Select(r => GroupOf(r.Path)).Distinct().Order(StringComparer.Ordinal).Append("all").ToList();
            Console.WriteLine();
            Console.WriteLine($"| generator | pages | {string.Join(" | ", extractors.Select(e => $"{e.Name}: recall / precision"))} |");
            Console.WriteLine($"|---|---:|{string.Concat(extractors.Select(_ => "---|"))}");
            foreach (var group in groups)
            {
                var cells = extractors.Select(e =>
                {
                    var inGroup = e.Rows.Where(r => group == "all" || GroupOf(r.Path) == group).ToList();
                    return $"{(double)inGroup.Sum(r => r.Matched) / inGroup.Sum(r => r.Reference):F3} / {(double)inGroup.Sum(r => r.Matched) / Math.Max(1, inGroup.Sum(r => r.Extracted)):F3}";
                });
                Console.WriteLine($"| {group} | {rows.Count(r => group == "all" || GroupOf(r.Path) == group)} | {string.Join(" | ", cells)} |");
            }
            // Extraction alone on one core, as the yardsticks are timed: CPU time of this thread, pages read beforehand.
            var htmls = rows.Select(r => File.ReadAllText(Path.Combine(root, r.Path))).ToList();
            foreach (var html in htmls.Take(30)) TextExtractor.Extract(html); // warm-up
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            foreach (var html in htmls) TextExtractor.Extract(html);
            var seconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
            Console.WriteLine($"this project's extraction (parse + extract), one thread: {rows.Sum(r => r.Bytes) / 1e6:F1} MB of HTML in {seconds:F2} CPU-seconds = {rows.Sum(r => r.Bytes) / 1e6 / seconds:F2} MB per CPU-second");
            Console.WriteLine();
        }
        // The lowest pages of each generator: a failing family is a bug to find, not an average to hide in.
        foreach (var generator in rows.GroupBy(r => r.Generator))
            foreach (var worst in generator.Where(r => r.Reference > 200).OrderBy(r => (double)r.Matched / r.Reference).Take(3))
                Console.WriteLine($"lowest recall: {worst.Path} {(double)worst.Matched / worst.Reference:F3} ({worst.Reference} units)");
        foreach (var worst in rows.Where(r => r.Extracted > 200).OrderByDescending(r => (double)(r.Extracted - r.Matched) / r.Extracted).Take(5))
            Console.WriteLine($"most boilerplate: {worst.Path} {(double)(worst.Extracted - worst.Matched) / worst.Extracted:P1} of {worst.Extracted} units");

        Profile(rows.Select(r => File.ReadAllText(Path.Combine(root, r.Path))).ToList());
        return Task.CompletedTask;
    }

    /// <summary>The cleaner's parts on one core, over every page: total time and cost per character, small pages vs large.</summary>
    private static void Profile(List<string> pages)
    {
        var cleaner = new DocumentCleaner(new CleanerOptions(), []);
        var parser = new HtmlParser(new HtmlParserOptions { IsScripting = false });
        var parts = new Dictionary<string, List<(int Chars, double Seconds)>>();
        void Time(string part, int chars, Action action)
        {
            var watch = Stopwatch.StartNew();
            action();
            (parts.TryGetValue(part, out var list) ? list : parts[part] = []).Add((chars, watch.Elapsed.TotalSeconds));
        }
        foreach (var page in pages.Take(30)) cleaner.Clean("w", "u", page); // warm-up: JIT, regex construction
        long bytes = pages.Sum(p => (long)Encoding.UTF8.GetByteCount(p));
        // Three rounds: the median and the best, since one round of a few seconds moves with GC and the machine.
        var rounds = new List<double>();
        for (var round = 0; round < 3; round++)
        {
            var total = Stopwatch.StartNew();
            foreach (var page in pages) cleaner.Clean("id", "http://x/", page);
            rounds.Add(total.Elapsed.TotalSeconds);
        }
        rounds.Sort();
        Console.WriteLine($"whole cleaner (default recipe), one core: {pages.Count} pages, {bytes / 1e6:F1} MB of HTML; median of 3 rounds " +
                          $"{rounds[1]:F2} s = {bytes / 1e6 / rounds[1]:F1} MB/s, best {bytes / 1e6 / rounds[0]:F1} MB/s");

        foreach (var page in pages)
        {
            var chars = page.Length;
            Time("parse (AngleSharp)", chars, () => parser.ParseDocument(page).Dispose());
            TextExtractor.Extracted extracted = null!;
            Time("parse + extraction", chars, () => extracted = TextExtractor.Extract(page));
            string text = "";
            Time("normalization", extracted.Text.Length, () => text = TextNormalizer.Normalize(extracted.Text, true));
            var language = "";
            Time("language id", text.Length, () => language = LanguageIdentifier.Identify(text).Language);
            if (language is not ("en" or "ja")) continue;
            Document document = null!;
            Time("document statistics (lines, words)", text.Length, () => document = new Document(text, language));
            Time("compression ratio column", text.Length, () => Pipeline.Cleaner.Filters.TextStats.CompressionRatio(text));
            foreach (var step in cleaner.Recipe.StepsFor(language))
            {
                var result = default(Pipeline.Cleaner.Filters.StepResult);
                Time($"{language}: {step.Filter.Name}", text.Length, () => result = step.Filter.Apply(document));
                if (result.Kept is null) break;
                document = result.Kept;
            }
            Time("pii masking", document.Text.Length, () => PiiMasker.Mask(document.Text));
        }
        // Cost per 1,000 characters of each part's own input (HTML for parsing and extraction, text after that).
        Console.WriteLine("| part | seconds | share | µs per 1,000 input chars, smallest third of inputs | largest third |");
        Console.WriteLine("|---|---|---|---|---|");
        var all = parts.Where(p => p.Key != "parse + extraction").Sum(p => p.Value.Sum(v => v.Seconds)) + parts["parse + extraction"].Sum(v => v.Seconds) - parts["parse (AngleSharp)"].Sum(v => v.Seconds);
        foreach (var (part, values) in parts)
        {
            var sorted = values.OrderBy(v => v.Chars).ToList();
            double PerKChar(IEnumerable<(int Chars, double Seconds)> v) => v.Sum(x => x.Seconds) * 1e9 / Math.Max(1, v.Sum(x => (long)x.Chars));
            var third = Math.Max(1, sorted.Count / 3);
            var time = values.Sum(v => v.Seconds);
            Console.WriteLine($"| {part} | {time:F2} | {time / all:P0} | {PerKChar(sorted.Take(third)):F1} | {PerKChar(sorted.TakeLast(third)):F1} |");
        }
    }

    private static (int Reference, int Extracted, int Matched) Compare(Dictionary<string, int> reference, Dictionary<string, int> extracted) =>
        (reference.Values.Sum(), extracted.Values.Sum(), reference.Sum(r => Math.Min(r.Value, extracted.GetValueOrDefault(r.Key))));

    /// <summary>A bag of units of NFKC text: Latin letter/digit runs (lower case) and single kana or kanji.</summary>
    public static Dictionary<string, int> Units(string text)
    {
        text = TextNormalizer.Normalize(text, true);
        var bag = new Dictionary<string, int>(StringComparer.Ordinal);
        var word = new StringBuilder();
        void Add(string unit) => bag[unit] = bag.GetValueOrDefault(unit) + 1;
        foreach (var c in text)
        {
            if (c is >= '\u3040' and <= '\u30FF' or >= '\u4E00' and <= '\u9FFF')
            {
                if (word.Length > 0) { Add(word.ToString()); word.Clear(); }
                Add(c.ToString());
            }
            else if (char.IsLetterOrDigit(c)) word.Append(char.ToLowerInvariant(c));
            else if (word.Length > 0) { Add(word.ToString()); word.Clear(); }
        }
        if (word.Length > 0) Add(word.ToString());
        return bag;
    }
}
