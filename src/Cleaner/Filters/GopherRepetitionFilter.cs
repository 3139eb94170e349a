namespace Pipeline.Cleaner.Filters;

/// <summary>
/// Gopher repetition rules. On Japanese text the n-grams are over characters (Swallow corpus practice), elsewhere
/// over words.
/// </summary>
public sealed class GopherRepetitionFilter : IDocumentFilter
{
    public string Name => "gopher_repetition";
    public double MaxDuplicateLines { get; init; } = 0.30;
    public double MaxDuplicateParagraphs { get; init; } = 0.30;
    public double MaxDuplicateLineChars { get; init; } = 0.20;
    public double MaxDuplicateParagraphChars { get; init; } = 0.20;
    public IReadOnlyList<(int N, double Max)> TopNGrams { get; init; } = [(2, 0.20), (3, 0.18), (4, 0.16)];
    public IReadOnlyList<(int N, double Max)> DuplicatedNGrams { get; init; } = [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)];

    public string? Reject(Document d)
    {
        var (lineFraction, lineChars) = TextStats.Duplicates(d.Lines);
        if (lineFraction > MaxDuplicateLines) return "duplicate lines";
        if (lineChars > MaxDuplicateLineChars) return "duplicate line characters";
        var (paragraphFraction, paragraphChars) = TextStats.Duplicates(d.Paragraphs);
        if (paragraphFraction > MaxDuplicateParagraphs) return "duplicate paragraphs";
        if (paragraphChars > MaxDuplicateParagraphChars) return "duplicate paragraph characters";
        // Characters for Japanese, words elsewhere; capped so gigantic documents stay linear-time.
        IReadOnlyList<string> units = d.IsJapanese
            ? d.Text.Where(c => !char.IsWhiteSpace(c)).Take(200_000).Select(c => c.ToString()).ToList()
            : d.Words.Take(100_000).ToList();
        foreach (var (n, max) in TopNGrams)
            if (TextStats.TopNGramCharFraction(units, n) > max) return $"top {n}-gram";
        foreach (var (n, max) in DuplicatedNGrams)
            if (TextStats.DuplicatedNGramCharFraction(units, n) > max) return $"duplicated {n}-grams";
        return null;
    }
}
