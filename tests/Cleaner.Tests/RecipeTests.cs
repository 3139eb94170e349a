using System.Security.Cryptography;
using System.Text;
using Pipeline.Cleaner.Filters;

namespace Pipeline.Cleaner.Tests;

public sealed class RecipeTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("recipes-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static DocumentCleaner With(string recipe) => new(new CleanerOptions { Recipe = recipe }, []);

    [Fact]
    public void The_strict_recipe_gives_exactly_what_the_fixed_stack_gave_on_every_sample_page()
    {
        // Golden/strict.tsv was written by the cleaner before recipes existed (the seven rules fixed in its
        // constructor): for each of the sample site's 336 pages, the rule that removed it, why, or the kept text's hash.
        var cleaner = With("strict");
        var root = Path.Combine(AppContext.BaseDirectory, "fixtures", "site");
        var expected = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Golden", "strict.tsv"));
        Assert.Equal(336, expected.Length);
        foreach (var line in expected)
        {
            var fields = line.Split('\t');
            var outcome = cleaner.Clean(fields[0], "u", File.ReadAllText(Path.Combine(root, fields[0])));
            // Hashed with paragraphs joined by one newline, as the extractor wrote them when the file was made: since
            // then a blank line separates paragraphs (so Gopher's paragraph rules can fire), and nothing else changed.
            var text = outcome.Document?.Text.Replace("\n\n", "\n");
            var hash = text is null ? "-" : Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
            Assert.Equal(line, $"{fields[0]}\t{outcome.RemovedBy ?? "kept"}\t{outcome.Detail ?? ""}\t{hash}");
        }
    }

    [Theory]
    [InlineData("fineweb", "gopher_repetition,gopher_quality,c4,fineweb")]
    [InlineData("refinedweb", "gopher_repetition,gopher_quality,line_corrections")]
    [InlineData("gopher", "gopher_quality,gopher_repetition")]
    [InlineData("c4", "c4")]
    [InlineData("swallow", "gopher_repetition,japanese_quality")]
    [InlineData("llm-jp", "japanese_lines,compression_ratio")]
    [InlineData("strict", "line_corrections,gopher_repetition,gopher_quality,c4,fineweb,japanese_quality,compression_ratio")]
    public void Shipped_recipes_have_their_papers_steps_in_order(string recipe, string steps)
    {
        var cleaner = With(recipe);
        Assert.Equal(steps, string.Join(',', cleaner.Recipe.StepsFor("en").Select(s => s.Filter.Name)));
        var c4 = cleaner.Recipe.AllSteps.Select(s => s.Filter).OfType<C4Filter>().SingleOrDefault();
        if (c4 is not null) Assert.Equal(recipe != "fineweb", c4.FilterNoTerminalPunctuation); // FineWeb turns it off
    }

    [Fact]
    public void The_default_recipe_is_fineweb_for_english_and_swallow_for_japanese()
    {
        var recipe = With(Recipe.Default).Recipe;
        Assert.Equal(0.05, recipe.StepsFor("en").Select(s => s.Filter).OfType<FineWebFilter>().Single().MaxDuplicateLineChars);
        Assert.All(recipe.StepsFor("en").Skip(1), s => Assert.True(s.ExemptCode));
        Assert.Equal(["gopher_repetition", "gopher_quality", "c4", "fineweb"], recipe.StepsFor("en").Select(s => s.Filter.Name));
        Assert.Equal(["gopher_repetition", "japanese_quality"], recipe.StepsFor("ja").Select(s => s.Filter.Name));
        // On the real Japanese pages, no English rule ever removes a Japanese document.
        var cleaner = new DocumentCleaner(new CleanerOptions { Languages = ["ja"] }, []);
        var removedBy = Fixtures.Pages("ja").Select(p => cleaner.Clean("a", "u", File.ReadAllText(p)).RemovedBy).Where(r => r is not null).ToList();
        Assert.All(removedBy, r => Assert.Contains(r, new[] { "gopher_repetition", "japanese_quality", "language", "empty" }));
    }

    [Fact]
    public void The_default_recipe_removes_the_junk_fixture()
    {
        // Junk/ (bench/build-junk-pages.py): keyword lists, boilerplate-only pages, lorem ipsum, repeated lines,
        // navigation farms and machine-generated listings, five of each in English and in Japanese.
        var cleaner = new DocumentCleaner(new CleanerOptions(), ShardCleaner.LoadNgWords(""));
        var pages = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Junk"), "*.html");
        Assert.Equal(60, pages.Length);
        var kept = pages.Where(p => cleaner.Clean("j", "u", File.ReadAllText(p)).Document is not null).Select(Path.GetFileName).ToList();
        Assert.True(kept.Count <= 6, $"kept {kept.Count} of 60 junk pages: {string.Join(", ", kept)}");
        // The C4 recipe alone lets through what its line rules cannot see: the fixture can tell recipes apart.
        var c4 = With("c4");
        Assert.True(pages.Count(p => c4.Clean("j", "u", File.ReadAllText(p)).Document is not null) > 6);
    }

    [Fact]
    public void A_recipe_file_is_read_strictly_and_overrides_apply_to_its_steps()
    {
        var path = Path.Combine(_root, "mine.json");
        File.WriteAllText(path, """{ "steps": [ { "filter": "c4", "settings": { "MinSentences": 1, "DropCurlyBrace": false } } ] }""");
        var cleaner = new DocumentCleaner(new CleanerOptions { Recipe = path, Filters = new(StringComparer.OrdinalIgnoreCase) { ["c4"] = new() { ["MinWordsPerLine"] = "2" } } }, []);
        var c4 = Assert.IsType<C4Filter>(Assert.Single(cleaner.Recipe.StepsFor("ja")).Filter);
        Assert.Equal((1, false, 2), (c4.MinSentences, c4.DropCurlyBrace, c4.MinWordsPerLine));

        void Fails(string json, string expected, CleanerOptions? options = null)
        {
            File.WriteAllText(path, json);
            var error = Assert.Throws<ArgumentException>(() => new DocumentCleaner(options ?? new CleanerOptions { Recipe = path }, []));
            Assert.Contains(expected, error.Message);
        }
        Fails("""{ "steps": [ { "filter": "c5" } ] }""", "steps[0]: there is no filter named 'c5'");
        Fails("""{ "steps": [ { "filter": "c4", "setings": {} } ] }""", "setings");
        Fails("""{ "steps": [ { "filter": "c4", "settings": { "MinSentencez": 1 } } ] }""", "steps[0]:settings:MinSentencez");
        Fails("""{ "description": "neither" }""", "either 'steps' or 'byLanguage'");
        Fails("""{ "byLanguage": { "en": "fineweb" } }""", "no steps for 'ja'");
        Fails("""{ "steps": [ { "filter": "c4" } ] }""", "Pipeline:Cleaner:Filters:fineweb: recipe 'mine' has no 'fineweb' step",
            new CleanerOptions { Recipe = path, Filters = new(StringComparer.OrdinalIgnoreCase) { ["fineweb"] = new() { ["Enabled"] = "false" } } });
        Assert.Contains("there is no recipe named 'finewebb'", Assert.Throws<ArgumentException>(() => With("finewebb")).Message);
        Assert.Throws<ArgumentException>(() => With("../strict"));
    }

    [Fact]
    public void Code_blocks_are_marked_at_extraction_and_an_exempt_step_keeps_them_in_place()
    {
        var prose = string.Concat(Enumerable.Range(0, 8).Select(i => $"<p>The configuration file is read once at start, and every change needs a restart of the service number {i}.</p>"));
        var html = $"<html><body><h1>Setup</h1>{prose}<div class=\"highlight\"><pre>server {{\n  listen 80\n}}</pre></div><p>Then <code>reload</code> the server and check the log for errors again.</p></body></html>";
        var extracted = TextExtractor.Extract(html);
        Assert.Equal(["server {", "listen 80", "}"], extracted.CodeLines);
        // A bare <pre> is preformatted text, as man pages served as HTML are; <pre><code> (Markdown) is code.
        Assert.Empty(TextExtractor.Extract("<html><body><pre>NAME\n  ls - list directory contents</pre></body></html>").CodeLines);
        Assert.Equal(["x = {}"], TextExtractor.Extract("<html><body><pre><code>x = {}</code></pre></body></html>").CodeLines);

        var path = Path.Combine(_root, "code.json");
        File.WriteAllText(path, """{ "steps": [ { "filter": "c4" } ] }""");
        var judged = new DocumentCleaner(new CleanerOptions { Recipe = path }, []).Clean("a", "u", html);
        Assert.Equal(("c4", "too little left"), (judged.RemovedBy, judged.Detail)); // the "{" rule drops the whole page

        File.WriteAllText(path, """{ "steps": [ { "filter": "c4", "exemptCode": true } ] }""");
        var exempt = new DocumentCleaner(new CleanerOptions { Recipe = path }, []).Clean("a", "u", html).Document!;
        var lines = exempt.Text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.DoesNotContain("Setup", lines); // prose rules still apply to prose: no terminal punctuation
        Assert.Equal(["server {", "listen 80", "}"], lines.Where(l => !l.StartsWith("The ")).Take(3));
        Assert.EndsWith("check the log for errors again.", lines[^1]);
    }

    [Fact]
    public void Repetition_is_counted_as_datatrove_counts_it_and_strict_keeps_the_old_count()
    {
        var units = TextStats.Units.FromWords("a b c d e f g h i j a b c d e".Split(' '));
        Assert.Equal(5, TextStats.RepeatedNGramChars(units, 5));          // the repeat only, not the first "a b c d e"
        Assert.Equal(10.0 / 15, TextStats.DuplicatedNGramCharFraction(units, 5), 6); // both occurrences
        Assert.Equal(6, TextStats.TopNGramChars(units, 2));               // "a b" (3 characters with its space) twice

        // One sentence of 14 words said twice in a 128-word text: as datatrove counts, 6% of the text is in repeated
        // 5-grams; counting both occurrences, 22% of the word characters. Gopher's limit for 5-grams is 0.15.
        var filler = string.Join(' ', Enumerable.Range(0, 100).Select(i => $"w{i:D3}"));
        var sentence = string.Join(' ', Enumerable.Range(0, 14).Select(i => $"s{i:D3}"));
        var document = new Document($"{sentence} {filler} {sentence}", "en");
        Assert.Null(new GopherRepetitionFilter().Reject(document));
        Assert.Equal("duplicated 5-grams", new GopherRepetitionFilter { Counting = NGramCounting.AllOccurrences }.Reject(document));

        // The mode by name in configuration, as the strict recipe sets it; another name is an error listing both.
        static CleanerOptions Counting(string value) => new() { Filters = new(StringComparer.OrdinalIgnoreCase) { ["gopher_repetition"] = new() { ["Counting"] = value } } };
        var configured = new DocumentCleaner(Counting("all-occurrences"), []).Recipe.AllSteps.Select(s => s.Filter).OfType<GopherRepetitionFilter>();
        Assert.All(configured, f => Assert.Equal(NGramCounting.AllOccurrences, f.Counting));
        var error = Assert.Throws<ArgumentException>(() => new DocumentCleaner(Counting("all"), []));
        Assert.Equal("Pipeline:Cleaner:Filters:gopher_repetition:Counting 'all' is not datatrove or all-occurrences", error.Message);
    }

    [Fact]
    public void The_shipped_ng_word_list_is_loaded()
    {
        Assert.Contains("出会い系", ShardCleaner.LoadNgWords(""));
        Assert.Throws<FileNotFoundException>(() => ShardCleaner.LoadNgWords(Path.Combine(_root, "missing.txt")));
    }
}
