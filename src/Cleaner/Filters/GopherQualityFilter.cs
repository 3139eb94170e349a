namespace Pipeline.Cleaner.Filters;

/// <summary>Gopher quality rules (Rae et al. 2021) for space-delimited languages; thresholds are the published ones.</summary>
public sealed class GopherQualityFilter : IDocumentFilter
{
    public string Name => "gopher_quality";
    public int MinWords { get; init; } = 50;
    public int MaxWords { get; init; } = 100_000;
    public double MinMeanWordLength { get; init; } = 3;
    public double MaxMeanWordLength { get; init; } = 10;
    public double MaxSymbolWordRatio { get; init; } = 0.1;
    public double MaxBulletLines { get; init; } = 0.9;
    public double MaxEllipsisLines { get; init; } = 0.3;
    public double MinAlphaWords { get; init; } = 0.8;
    public int MinStopWords { get; init; } = 2;
    public IReadOnlySet<string> StopWords { get; init; } = new HashSet<string> { "the", "be", "to", "of", "and", "that", "have", "with" };

    public string? Reject(Document d)
    {
        if (d.IsJapanese) return null;
        var words = d.Words;
        if (words.Length < MinWords) return "too few words";
        if (words.Length > MaxWords) return "too many words";
        var mean = words.Average(w => w.Length);
        if (mean < MinMeanWordLength || mean > MaxMeanWordLength) return "mean word length";
        var hashes = d.Text.Count(c => c == '#');
        var ellipses = CountEllipses(d.Text);
        if ((double)hashes / words.Length > MaxSymbolWordRatio) return "hash ratio";
        if ((double)ellipses / words.Length > MaxSymbolWordRatio) return "ellipsis ratio";
        if (d.Lines.Length > 0)
        {
            if ((double)d.Lines.Count(l => l.Length > 0 && l[0] is '-' or '*' or '•' or '●' or '・') / d.Lines.Length > MaxBulletLines) return "bullet lines";
            if ((double)d.Lines.Count(l => l.EndsWith("...") || l.EndsWith('…')) / d.Lines.Length > MaxEllipsisLines) return "ellipsis lines";
        }
        if ((double)words.Count(w => w.Any(char.IsLetter)) / words.Length < MinAlphaWords) return "alphabetic words";
        if (words.Select(w => w.ToLowerInvariant()).Where(StopWords.Contains).Take(MinStopWords).Count() < MinStopWords) return "stop words";
        return null;
    }

    private static int CountEllipses(string text)
    {
        int count = 0;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '…') count++;
            else if (i + 2 < text.Length && text[i] == '.' && text[i + 1] == '.' && text[i + 2] == '.') { count++; i += 2; }
        }
        return count;
    }
}
