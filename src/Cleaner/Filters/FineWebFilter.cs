namespace Pipeline.Cleaner.Filters;

/// <summary>FineWeb's extra quality rules (Penedo et al. 2024), with its published thresholds.</summary>
public sealed class FineWebFilter : IDocumentFilter
{
    public string Name => "fineweb";
    public double MinTerminalLines { get; init; } = 0.12;
    public double MaxShortLines { get; init; } = 0.67;
    public int ShortLineChars { get; init; } = 30;
    public double MaxDuplicateLineChars { get; init; } = 0.01;
    public double MaxNewlinesPerWord { get; init; } = 0.3;

    public string? Reject(Document d)
    {
        if (d.Lines.Length == 0) return "empty";
        if ((double)d.Lines.Count(TextStats.EndsWithTerminal) / d.Lines.Length < MinTerminalLines) return "terminal punctuation lines";
        if (!d.IsJapanese && (double)d.Lines.Count(l => l.Length <= ShortLineChars) / d.Lines.Length > MaxShortLines) return "short lines";
        if (TextStats.Duplicates(d.Lines).Chars > MaxDuplicateLineChars) return "duplicate line characters";
        // Line breaks between non-blank lines: datatrove counts "\n" in trafilatura's output, which has no blank lines;
        // the blank lines between this extractor's paragraphs are not more lines.
        if (!d.IsJapanese && d.Words.Length > 0 && (double)Math.Max(0, d.Lines.Length - 1) / d.Words.Length > MaxNewlinesPerWord) return "newlines per word";
        return null;
    }
}
