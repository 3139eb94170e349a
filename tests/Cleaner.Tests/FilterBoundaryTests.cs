using Pipeline.Cleaner.Filters;

namespace Pipeline.Cleaner.Tests;

/// <summary>Each threshold of a filter, with a document exactly at it (kept) and one unit past it (removed).</summary>
public sealed class FilterBoundaryTests
{
    private static readonly GopherQualityFilter Quality = new();

    /// <summary>Ten lines of five words: "the" and "and" (the stop words) once, the rest four-letter words.</summary>
    private static List<List<string>> Lines(int lines = 10, int wordsPerLine = 5)
    {
        var result = Enumerable.Range(0, lines).Select(_ => Enumerable.Repeat("word", wordsPerLine).ToList()).ToList();
        result[0][0] = "the";
        result[0][1] = "and";
        return result;
    }

    private static Document Doc(List<List<string>> lines) => new(string.Join('\n', lines.Select(l => string.Join(' ', l))), "en");

    private static string? Reject(List<List<string>> lines) => Quality.Reject(Doc(lines));

    [Theory]
    [InlineData(50, null)]
    [InlineData(49, "too few words")]
    public void Gopher_quality_minimum_words(int words, string? expected)
    {
        var lines = Lines();
        lines[^1].RemoveRange(0, 50 - words);
        Assert.Equal(expected, Reject(lines));
    }

    [Fact]
    public void Gopher_quality_maximum_words()
    {
        var filter = new GopherQualityFilter { MaxWords = 50 };
        Assert.Null(filter.Reject(Doc(Lines())));
        var over = Lines();
        over[^1].Add("word");
        Assert.Equal("too many words", filter.Reject(Doc(over)));
    }

    [Theory]
    [InlineData("abc", null)]      // mean exactly 3 (the, and: 3 letters too)
    [InlineData("ab", "mean word length")]
    public void Gopher_quality_mean_word_length(string filler, string? expected)
    {
        var lines = Lines();
        foreach (var line in lines) for (var i = 0; i < line.Count; i++) if (line[i] == "word") line[i] = "abc";
        lines[^1][^1] = filler;
        Assert.Equal(expected, Reject(lines));
    }

    [Theory]
    [InlineData(5, null)]          // 5 of 50 words: exactly 0.1
    [InlineData(6, "hash ratio")]
    public void Gopher_quality_hash_ratio(int hashes, string? expected)
    {
        var lines = Lines();
        for (var i = 0; i < hashes; i++) lines[1 + i % 9][i / 9] = "w#rd";
        Assert.Equal(expected, Reject(lines));
    }

    [Theory]
    [InlineData(9, null)]          // 9 of 10 lines: exactly 0.9
    [InlineData(10, "bullet lines")]
    public void Gopher_quality_bullet_lines(int bullets, string? expected)
    {
        var lines = Lines();
        for (var i = 0; i < bullets; i++) lines[i].Insert(0, "-");
        Assert.Equal(expected, Reject(lines));
    }

    [Theory]
    [InlineData(3, null)]          // 3 of 10 lines: exactly 0.3
    [InlineData(4, "ellipsis lines")]
    public void Gopher_quality_ellipsis_lines(int ellipses, string? expected)
    {
        var lines = Lines();
        for (var i = 0; i < ellipses; i++) lines[^(i + 1)][^1] = "word...";
        Assert.Equal(expected, Reject(lines));
    }

    [Theory]
    [InlineData(10, null)]         // 40 of 50 words alphabetic: exactly 0.8
    [InlineData(11, "alphabetic words")]
    public void Gopher_quality_alphabetic_words(int numbers, string? expected)
    {
        var lines = Lines();
        for (var i = 0; i < numbers; i++) lines[1 + i % 9][i / 9] = "1234";
        Assert.Equal(expected, Reject(lines));
    }

    [Theory]
    [InlineData("and", null)]
    [InlineData("word", "stop words")]
    public void Gopher_quality_stop_words(string second, string? expected)
    {
        var lines = Lines();
        lines[0][1] = second;
        Assert.Equal(expected, Reject(lines));
    }

    /// <summary>Only the duplicate-line rules: the n-gram rules off.</summary>
    private static GopherRepetitionFilter LineRules(double lines = 1, double chars = 1) =>
        new() { MaxDuplicateLines = lines, MaxDuplicateLineChars = chars, MaxDuplicateParagraphs = 1, MaxDuplicateParagraphChars = 1, TopNGrams = [], DuplicatedNGrams = [] };

    /// <summary>Twenty lines of the same length, <paramref name="duplicates"/> of them repeating the first.</summary>
    private static Document RepeatedLines(int duplicates) =>
        new(string.Join('\n', Enumerable.Range(0, 20).Select(i => i < duplicates ? "line number 00" : $"line number {i + 10:D2}")), "en");

    [Theory]
    [InlineData(7, null)]          // the first of 7 copies is not a duplicate: 6 of 20 = 0.30
    [InlineData(8, "duplicate lines")]
    public void Gopher_repetition_duplicate_lines(int copies, string? expected) =>
        Assert.Equal(expected, LineRules(lines: 0.30).Reject(RepeatedLines(copies)));

    [Theory]
    [InlineData(5, null)]          // 4 repeated lines of 20 equal-length lines: 0.20 of the characters
    [InlineData(6, "duplicate line characters")]
    public void Gopher_repetition_duplicate_line_characters(int copies, string? expected) =>
        Assert.Equal(expected, LineRules(chars: 0.20).Reject(RepeatedLines(copies)));

    private static readonly FineWebFilter FineWeb = new();

    private static Document Text(IEnumerable<string> lines) => new(string.Join('\n', lines), "en");

    /// <summary>A line of 40 characters, different for every <paramref name="n"/>.</summary>
    private static string Long(int n, string end = ".") => $"this is line number {n:D3} of the document" + end;

    [Theory]
    [InlineData(3, null)]          // 3 of 25 lines end in terminal punctuation: exactly 0.12
    [InlineData(2, "terminal punctuation lines")]
    public void FineWeb_terminal_punctuation_lines(int terminal, string? expected) =>
        Assert.Equal(expected, FineWeb.Reject(Text(Enumerable.Range(0, 25).Select(i => Long(i, i < terminal ? "." : "")))));

    [Theory]
    [InlineData(67, null)]         // 67 of 100 lines of at most 30 characters: exactly 0.67
    [InlineData(68, "short lines")]
    public void FineWeb_short_lines(int shortLines, string? expected) =>
        Assert.Equal(expected, FineWeb.Reject(Text(Enumerable.Range(0, 100).Select(i => i < shortLines ? $"short line number {i:D3}." : Long(i)))));

    [Theory]
    [InlineData(1, null)]          // 1 repeated line of 100 equal ones: exactly 0.01 of the characters
    [InlineData(2, "duplicate line characters")]
    public void FineWeb_duplicate_line_characters(int repeats, string? expected) =>
        Assert.Equal(expected, FineWeb.Reject(Text(Enumerable.Range(0, 100).Select(i => Long(i < repeats + 1 ? 0 : i)))));

    [Theory]
    [InlineData(10, null)]         // 9 newlines for 30 words: exactly 0.3
    [InlineData(11, "newlines per word")]
    public void FineWeb_newlines_per_word(int lines, string? expected) =>
        Assert.Equal(expected, FineWeb.Reject(Text(Enumerable.Range(0, lines).Select(i => $"abcdefghijkl abcdefghijkl abcdefgh{i:D3}."))));

    [Fact]
    public void FineWeb_newlines_per_word_does_not_count_the_blank_lines_between_paragraphs()
    {
        var paragraphs = string.Join("\n\n", Enumerable.Range(0, 10).Select(i => $"abcdefghijkl abcdefghijkl abcdefgh{i:D3}."));
        Assert.Null(FineWeb.Reject(new Document(paragraphs, "en"))); // 9 line breaks for 30 words, as with one newline
    }

    [Theory]
    [InlineData(3, true)]          // three words: the line stays, and with it the fifth sentence
    [InlineData(2, false)]
    public void C4_words_per_line_and_sentences(int wordsInLastLine, bool kept)
    {
        var lines = Enumerable.Range(0, 4).Select(i => $"A full sentence number {i}.").Append(string.Join(' ', Enumerable.Repeat("word", wordsInLastLine)) + ".");
        var result = new C4Filter().KeepLines(Text(lines));
        Assert.Equal(kept, result is not null);
        if (result is not null) Assert.Equal(5, result.Split('\n').Length);
    }

    [Theory]
    [InlineData(5, true)]
    [InlineData(4, false)]
    public void C4_minimum_sentences(int sentences, bool kept) =>
        Assert.Equal(kept, new C4Filter().KeepLines(Text(Enumerable.Range(0, sentences).Select(i => $"A full sentence number {i}."))) is not null);

    /// <summary>A Japanese sentence of <paramref name="hiragana"/> hiragana, <paramref name="katakana"/> katakana and <paramref name="kanji"/> kanji, then 。.</summary>
    private static string Sentence(int hiragana, int katakana, int kanji, string end = "。") =>
        new string('あ', hiragana) + new string('カ', katakana) + new string('日', kanji) + end;

    private static Document Japanese(IEnumerable<string> sentences) => new(string.Concat(sentences), "ja");

    /// <summary>Swallow's rules with the length minimums off, so each test moves one figure.</summary>
    private static JapaneseQualityFilter Swallow(params string[] ngWords) => new(ngWords) { MinChars = 0, MinJapaneseChars = 0 };

    [Theory]
    [InlineData(0, null)]          // 20 sentences of 40 characters, 160 of 800 hiragana: exactly 0.2
    [InlineData(1, "hiragana fraction")]
    public void Swallow_minimum_hiragana(int fewer, string? expected) =>
        Assert.Equal(expected, Swallow().Reject(Japanese(Enumerable.Range(0, 20).Select(i => i < fewer ? Sentence(7, 0, 32) : Sentence(8, 0, 31)))));

    [Theory]
    [InlineData(0, null)]          // 400 of 800 katakana: exactly 0.5
    [InlineData(1, "katakana fraction")]
    public void Swallow_maximum_katakana(int more, string? expected) =>
        Assert.Equal(expected, Swallow().Reject(Japanese(Enumerable.Range(0, 20).Select(i => i < more ? Sentence(8, 21, 10) : Sentence(8, 20, 11)))));

    [Theory]
    [InlineData(20, null)]         // sentences of 20 characters (their 。 not counted)
    [InlineData(19, "mean sentence length")]
    public void Swallow_minimum_mean_sentence_length(int length, string? expected) =>
        Assert.Equal(expected, Swallow().Reject(Japanese(Enumerable.Repeat(Sentence(6, 0, length - 6), 25))));

    [Theory]
    [InlineData(200, null)]
    [InlineData(201, "longest sentence")]
    public void Swallow_longest_sentence(int longest, string? expected) =>
        Assert.Equal(expected, Swallow().Reject(Japanese(Enumerable.Repeat(Sentence(10, 0, 20), 10).Append(Sentence(60, 0, longest - 60)))));

    [Theory]
    [InlineData(4, null)]          // 4 of 20 sentences end in …: exactly 0.2
    [InlineData(5, "ellipsis sentences")]
    public void Swallow_ellipsis_sentences(int trailing, string? expected) =>
        Assert.Equal(expected, Swallow().Reject(Japanese(Enumerable.Range(0, 20).Select(i => i < trailing ? Sentence(8, 0, 30, "…。") : Sentence(8, 0, 31)))));

    [Theory]
    [InlineData(19, null)]         // 38 of 800 characters are the NG word: under 0.05
    [InlineData(20, "NG words")]   // 40 of 800: the limit itself removes
    public void Swallow_ng_word_characters(int occurrences, string? expected) =>
        Assert.Equal(expected, Swallow("殺す").Reject(Japanese(Enumerable.Range(0, 20).Select(i => i < occurrences ? "殺す" + Sentence(8, 0, 29) : Sentence(8, 0, 31)))));

    [Theory]
    [InlineData(400, null)]
    [InlineData(399, "too few characters")]
    public void Swallow_minimum_characters(int chars, string? expected) =>
        Assert.Equal(expected, new JapaneseQualityFilter([]) { MinJapaneseChars = 0 }.Reject(
            Japanese(Enumerable.Repeat(Sentence(8, 0, 31), 9).Append(Sentence(8, 0, chars - 360 - 9)))));

    [Theory]
    [InlineData(14, true)]         // a 20-character counter line of 400 characters: exactly 0.05 removed
    [InlineData(15, false)]        // 21 of 401
    public void RefinedWeb_line_corrections_removed_fraction(int digits, bool kept)
    {
        var lines = Enumerable.Range(0, 19).Select(i => $"this line stays {i:D3}.").Append(new string('7', digits) + " likes");
        var result = new RefinedWebLineFilter().KeepLines(Text(lines));
        Assert.Equal(kept, result is not null);
        if (result is not null) Assert.Equal(19, result.Split('\n').Length); // the counter line itself always goes
    }

    [Fact]
    public void Compression_ratio_band_keeps_its_ends_and_removes_beyond_them()
    {
        var document = Text(Enumerable.Range(0, 30).Select(i => $"Sentence {i} says something about package number {i * 7 % 13}."));
        var ratio = TextStats.CompressionRatio(document.Text);
        Assert.Null(new CompressionRatioFilter { Min = ratio, Max = 1 }.Reject(document));
        Assert.Null(new CompressionRatioFilter { Min = 0, Max = ratio }.Reject(document));
        Assert.Equal("too repetitive", new CompressionRatioFilter { Min = ratio + 1e-9, Max = 1 }.Reject(document));
        Assert.Equal("too random", new CompressionRatioFilter { Min = 0, Max = ratio - 1e-9 }.Reject(document));
    }

    [Theory]
    [InlineData(99, true)]         // a run of 99 ASCII characters stays
    [InlineData(100, false)]       // 100 is a run the filter cuts out
    public void Japanese_lines_cut_ascii_runs_of_the_limit_and_more(int run, bool stays)
    {
        var line = "日本語の文です" + new string('x', run) + "。";
        var kept = new JapaneseLineFilter().KeepLines(new Document(line + "\nascii only line\nカタカナだけ", "ja"))!;
        Assert.Equal(stays ? [line, "カタカナだけ"] : ["日本語の文です。", "カタカナだけ"], kept.Split('\n'));
    }

    /// <summary>A word of five letters that no other word of these texts is: f + four letters from the index.</summary>
    private static string Filler(int i) => "f" + string.Concat(Enumerable.Range(0, 4).Select(k => (char)('a' + i / (int)Math.Pow(26, 3 - k) % 26)));

    /// <summary>The text followed by distinct words up to exactly <paramref name="length"/> characters.</summary>
    private static string PadTo(string text, int length)
    {
        var builder = new System.Text.StringBuilder(text);
        for (var i = 0; length - builder.Length > 12; i++) builder.Append(' ').Append(Filler(i));
        var last = length - builder.Length - 1;
        builder.Append(' ').Append('z', last);
        Assert.Equal(length, builder.Length);
        return builder.ToString();
    }

    /// <summary>Only one n-gram rule on.</summary>
    private static GopherRepetitionFilter NGramRule((int, double)? top = null, (int, double)? duplicated = null) => new()
    {
        MaxDuplicateLines = 1, MaxDuplicateLineChars = 1, MaxDuplicateParagraphs = 1, MaxDuplicateParagraphChars = 1,
        TopNGrams = top is { } t ? [t] : [], DuplicatedNGrams = duplicated is { } d ? [d] : [],
    };

    [Theory]
    [InlineData(200, null)]            // "alpha beta" 4 times: 40 characters of 200 = 0.20
    [InlineData(199, "top 2-gram")]
    public void Gopher_repetition_top_2_gram(int length, string? expected)
    {
        var text = PadTo(string.Join(' ', Enumerable.Range(0, 4).Select(i => $"alpha beta {Filler(1000 + i)}")), length);
        Assert.Equal(expected, NGramRule(top: (2, 0.20)).Reject(new Document(text, "en")));
    }

    [Theory]
    [InlineData(167, null)]            // a 5-gram of 25 letters repeated once: 25 of 167 = 0.1497
    [InlineData(166, "duplicated 5-grams")] // 25 of 166 = 0.1506
    public void Gopher_repetition_duplicated_5_grams(int length, string? expected)
    {
        const string fiveGram = "alpha bravo delta gamma omega";
        var text = PadTo($"{fiveGram} {Filler(1000)} {fiveGram} {Filler(1001)}", length);
        Assert.Equal(expected, NGramRule(duplicated: (5, 0.15)).Reject(new Document(text, "en")));
    }

    [Theory]
    [InlineData(300, null)]            // on Japanese, 2-grams of 3 x 2 = 6 characters: "日本語の文章" 10 times = 60 of 300
    // (regression: the count added datatrove's n - 1 joining spaces, which Japanese text does not have: 110 of 300)
    [InlineData(299, "top 2-gram")]
    public void Gopher_repetition_counts_characters_on_Japanese(int length, string? expected)
    {
        var builder = new System.Text.StringBuilder();
        var distinct = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん".ToCharArray();
        for (var i = 0; i < 10; i++) builder.Append("日本語の文章").Append(distinct[i]).Append(distinct[i + 10]);
        for (var i = 0; builder.Length < length; i++) builder.Append((char)('一' + i)); // distinct CJK ideographs
        var text = builder.ToString();
        Assert.Equal(length, text.Length);
        Assert.Equal(expected, NGramRule(top: (2, 0.20)).Reject(new Document(text, "ja")));
    }

    [Fact]
    public void Extracted_text_separates_paragraphs_with_a_blank_line_a_list_or_a_table_being_one_paragraph()
    {
        var text = TextExtractor.Extract("<html><body><h1>Title</h1><p>first</p><p>second</p><ul><li>x</li><li>y</li></ul>" +
            "<table><tr><td>c1</td><td>c2</td></tr></table><pre>a\nb</pre></body></html>").Text;
        Assert.Equal("Title\n\nfirst\n\nsecond\n\n- x\n- y\n\nc1\nc2\n\na\nb", text);
        var document = new Document(text, "en");
        Assert.Equal(["Title", "first", "second", "- x\n- y", "c1\nc2", "a\nb"], document.Paragraphs);
        Assert.Equal([0, 1, 2, 3, 3, 4, 4, 5, 5], document.LineParagraphs);
    }

    /// <summary>Only the duplicate-paragraph rules.</summary>
    private static GopherRepetitionFilter ParagraphRules(double paragraphs = 1, double chars = 1) =>
        new() { MaxDuplicateLines = 1, MaxDuplicateLineChars = 1, MaxDuplicateParagraphs = paragraphs, MaxDuplicateParagraphChars = chars, TopNGrams = [], DuplicatedNGrams = [] };

    [Theory]
    [InlineData(3, null)]                    // 2 of 7 paragraphs repeat the list: 0.286
    [InlineData(4, "duplicate paragraphs")]  // 3 of 8: 0.375
    public void Gopher_repetition_duplicate_paragraphs_fire_on_extracted_pages(int lists, string? expected)
    {
        // Regression: the extractor ended every block with one newline, so an extracted page was one paragraph and the
        // paragraph rules could never fire. A menu-like list repeated on a page is what they are for.
        const string list = "<ul><li>Packages</li><li>Sources</li><li>Bugs</li></ul>";
        var html = "<html><body>" + string.Concat(Enumerable.Repeat(list, lists)) +
                   string.Concat(Enumerable.Range(0, 4).Select(i => $"<p>Paragraph {i} says something of its own.</p>")) + "</body></html>";
        var document = new Document(TextExtractor.Extract(html).Text, "en");
        Assert.Equal(lists + 4, document.Paragraphs.Length);
        Assert.Equal(expected, ParagraphRules(paragraphs: 0.30).Reject(document));
    }

    [Fact]
    public void Steps_that_remove_lines_keep_the_paragraph_breaks()
    {
        var document = new Document("日本語の行です\nascii only\n\nカタカナの行\n\nenglish only", "ja");
        Assert.Equal("日本語の行です\n\nカタカナの行", new JapaneseLineFilter().KeepLines(document));
        // A line of spaces (inside a <pre> block) is no paragraph break, for Paragraphs and for the steps alike.
        var preformatted = new Document("カナの行\n   \nカナの次の行", "ja");
        Assert.Single(preformatted.Paragraphs);
        Assert.Equal("カナの行\nカナの次の行", new JapaneseLineFilter().KeepLines(preformatted));
    }
}
