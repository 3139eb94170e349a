using Pipeline.Cleaner.Filters;

namespace Pipeline.Cleaner;

/// <summary>
/// The per-document pipeline: extraction, normalization, language identification, then line and document filters
/// in order, then PII masking. Stateless, so documents of a shard are cleaned in parallel.
/// </summary>
public sealed class DocumentCleaner
{
    private readonly CleanerOptions _options;

    public DocumentCleaner(CleanerOptions options, IReadOnlyList<string> ngWords)
    {
        _options = options;
        Steps =
        [
            new RefinedWebLineFilter(),
            new GopherRepetitionFilter(),
            new GopherQualityFilter(),
            new C4Filter(),
            new FineWebFilter(),
            new JapaneseQualityFilter(ngWords),
            new CompressionRatioFilter(),
        ];
    }

    /// <summary>The filters in pipeline order; each is an <see cref="ILineFilter"/> or an <see cref="IDocumentFilter"/>.</summary>
    public IReadOnlyList<object> Steps { get; }

    public sealed record Outcome(CleanDocument? Document, string? RemovedBy, string? Detail, long InputChars);

    /// <summary>Cleans one page; <paramref name="isHtml"/> is false for plain text (WET conversion records).</summary>
    public Outcome Clean(string id, string url, string html, bool isHtml = true)
    {
        var extracted = isHtml ? TextExtractor.Extract(html) : new TextExtractor.Extracted("", html);
        var text = TextNormalizer.Normalize(extracted.Text, _options.NormalizeNfkc);
        long chars = text.Length;
        if (text.Length == 0) return new Outcome(null, "empty", "no text after extraction", chars);
        var (language, score) = LanguageIdentifier.Identify(text);
        if (!_options.Languages.Contains(language) || score < _options.MinLanguageScore)
            return new Outcome(null, "language", $"{language} ({score:F2})", chars);

        var document = new Document(text, language);
        foreach (var step in Steps)
        {
            switch (step)
            {
                case ILineFilter lineFilter:
                    var kept = lineFilter.Apply(document);
                    if (string.IsNullOrEmpty(kept)) return new Outcome(null, lineFilter.Name, "too little left", chars);
                    if (kept != document.Text) document = new Document(kept, language);
                    break;
                case IDocumentFilter filter when filter.Reject(document) is { } reason:
                    return new Outcome(null, filter.Name, reason, chars);
            }
        }

        var final = document.Text;
        var masked = 0;
        if (_options.MaskPii) (final, masked) = PiiMasker.Mask(final);
        return new Outcome(new CleanDocument
        {
            Id = id,
            Url = url,
            Title = TextNormalizer.Normalize(extracted.Title, _options.NormalizeNfkc),
            Text = final,
            Language = language,
            LanguageScore = Math.Round(score, 4),
            Chars = final.Length,
            Words = document.Words.Length,
            Lines = document.Lines.Length,
            DuplicateLineCharFraction = Math.Round(TextStats.Duplicates(document.Lines).Chars, 4),
            CompressionRatio = Math.Round(TextStats.CompressionRatio(final), 4),
            PiiMasked = masked,
        }, null, null, chars);
    }
}
