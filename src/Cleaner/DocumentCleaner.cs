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
        List<object> steps =
        [
            new RefinedWebLineFilter(),
            new GopherRepetitionFilter(),
            new GopherQualityFilter(),
            new C4Filter(),
            new FineWebFilter(),
            new JapaneseQualityFilter(ngWords),
            new CompressionRatioFilter(),
        ];
        var names = steps.Select(NameOf).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var unknown in options.Filters.Keys.Where(k => !names.Contains(k)))
            throw new ArgumentException($"Pipeline:Cleaner:Filters:{unknown}: there is no filter named '{unknown}' (filters: {string.Join(", ", names)})");
        Steps = steps.Where(step => Configure(step, options)).ToList();
    }

    /// <summary>Applies Pipeline:Cleaner:Filters:&lt;name&gt;:&lt;property&gt; settings; false when the filter is disabled.</summary>
    private static bool Configure(object step, CleanerOptions options)
    {
        var name = NameOf(step);
        if (!options.Filters.TryGetValue(name, out var settings)) return true;
        foreach (var (key, value) in settings)
        {
            if (key.Equals("Enabled", StringComparison.OrdinalIgnoreCase))
            {
                if (!bool.TryParse(value, out var enabled))
                    throw new ArgumentException($"Pipeline:Cleaner:Filters:{name}:{key}: '{value}' is not true or false");
                if (!enabled) return false;
                continue;
            }
            var property = step.GetType().GetProperty(key, System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.IgnoreCase);
            if (property is null || !property.CanWrite || !(property.PropertyType.IsPrimitive || property.PropertyType == typeof(string)))
                throw new ArgumentException($"Pipeline:Cleaner:Filters:{name}:{key}: the filter has no settable number or flag named '{key}'");
            try
            {
                property.SetValue(step, Convert.ChangeType(value, property.PropertyType, System.Globalization.CultureInfo.InvariantCulture));
            }
            catch (FormatException)
            {
                throw new ArgumentException($"Pipeline:Cleaner:Filters:{name}:{key}: '{value}' is not a valid {property.PropertyType.Name}");
            }
        }
        return true;
    }

    private static string NameOf(object step) => step is ILineFilter line ? line.Name : ((IDocumentFilter)step).Name;

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
