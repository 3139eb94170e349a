namespace Pipeline.Cleaner.Filters;

/// <summary>
/// Gopher repetition rules. On Japanese text the n-grams are over characters (Swallow corpus practice), elsewhere
/// over words. A Japanese character carries about as much text as a third of an English word, so on Japanese the
/// n of every n-gram rule is multiplied by <see cref="JapaneseCharsPerWord"/>: with n itself (characters 5..10) the
/// duplicated-5-gram rule removed 125 of 137 Japanese pages of the sample site, since technical terms such as
/// パッケージ are 5-grams on their own.
/// </summary>
public sealed class GopherRepetitionFilter : IDocumentFilter
{
    public string Name => "gopher_repetition";
    public double MaxDuplicateLines { get; init; } = 0.30;
    public double MaxDuplicateParagraphs { get; init; } = 0.30;
    public double MaxDuplicateLineChars { get; init; } = 0.20;
    public double MaxDuplicateParagraphChars { get; init; } = 0.20;

    /// <summary>
    /// Lines and paragraphs shorter than this (characters) are not counted by the duplicate-line and -paragraph
    /// rules. 0 (Gopher as published) counts every one; documentation repeats short labels by its structure
    /// ("Parameters", "Returns:", "void", a parameter's name in every function's table), which are not repeated content.
    /// </summary>
    public int MinDuplicateChars { get; init; }
    public IReadOnlyList<(int N, double Max)> TopNGrams { get; init; } = [(2, 0.20), (3, 0.18), (4, 0.16)];
    public IReadOnlyList<(int N, double Max)> DuplicatedNGrams { get; init; } = [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)];

    public int JapaneseCharsPerWord { get; init; } = 3;

    /// <summary>
    /// How n-gram characters are counted. "datatrove" (the default; FineWeb's code): the top n-gram's characters times
    /// its count, and the characters of repeats only (not of first occurrences), over the text's length.
    /// "all-occurrences": every occurrence of a duplicated n-gram, over the characters of the units, as this project
    /// counted before recipes existed (the strict recipe keeps it). The Gopher paper's wording fits either.
    /// </summary>
    public NGramCounting Counting { get; init; } = NGramCounting.Datatrove;

    private IReadOnlyList<string> Counted(IReadOnlyList<string> items) => MinDuplicateChars == 0 ? items : items.Where(i => i.Length >= MinDuplicateChars).ToList();

    public string? Reject(Document d)
    {
        var (lineFraction, lineChars) = TextStats.Duplicates(Counted(d.Lines));
        if (lineFraction > MaxDuplicateLines) return "duplicate lines";
        if (lineChars > MaxDuplicateLineChars) return "duplicate line characters";
        var (paragraphFraction, paragraphChars) = TextStats.Duplicates(Counted(d.Paragraphs));
        if (paragraphFraction > MaxDuplicateParagraphs) return "duplicate paragraphs";
        if (paragraphChars > MaxDuplicateParagraphChars) return "duplicate paragraph characters";
        // Characters for Japanese, words elsewhere; capped so gigantic documents stay linear-time.
        var units = d.IsJapanese ? TextStats.Units.FromChars(d.Text) : TextStats.Units.FromWords(d.Words);
        var scale = d.IsJapanese ? JapaneseCharsPerWord : 1;
        var datatrove = Counting == NGramCounting.Datatrove;
        double length = Math.Max(1, d.Text.Length);
        foreach (var (n, max) in TopNGrams)
            if ((datatrove ? TextStats.TopNGramChars(units, n * scale) / length : TextStats.TopNGramCharFraction(units, n * scale)) > max) return $"top {n}-gram";
        foreach (var (n, max) in DuplicatedNGrams)
            if ((datatrove ? TextStats.RepeatedNGramChars(units, n * scale) / length : TextStats.DuplicatedNGramCharFraction(units, n * scale)) > max) return $"duplicated {n}-grams";
        return null;
    }
}

/// <summary>How <see cref="GopherRepetitionFilter"/> counts n-gram characters ("datatrove" or "all-occurrences" in recipes).</summary>
public enum NGramCounting
{
    Datatrove,
    [System.Text.Json.Serialization.JsonStringEnumMemberName("all-occurrences")] AllOccurrences,
}
