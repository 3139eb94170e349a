using Pipeline.Cleaner.Filters;
using Pipeline.Contracts.Rows;

namespace Pipeline.Cleaner;

/// <summary>
/// The per-document pipeline: extraction, normalization, language identification, then the steps of the configured
/// recipe for the document's language, in order, then PII masking. Stateless, so documents of a shard are cleaned in
/// parallel.
/// </summary>
public sealed class DocumentCleaner
{
    private readonly CleanerOptions _options;

    public DocumentCleaner(CleanerOptions options, IReadOnlyList<string> ngWords)
    {
        _options = options;
        Recipe = Recipe.Load(options.Recipe, options, ngWords);
    }

    public Recipe Recipe { get; }

    public sealed record Outcome(CleanDocument? Document, string? RemovedBy, string? Detail, long InputChars);

    /// <summary>Cleans one page; <paramref name="isHtml"/> is false for plain text (WET conversion records).</summary>
    public Outcome Clean(string id, string url, string html, bool isHtml = true)
    {
        var extracted = isHtml ? TextExtractor.Extract(html) : new TextExtractor.Extracted("", html, []);
        var text = TextNormalizer.Normalize(extracted.Text, _options.NormalizeNfkc);
        long chars = text.Length;
        if (text.Length == 0) return new Outcome(null, "empty", "no text after extraction", chars);
        var (language, score) = LanguageIdentifier.Identify(text);
        if (!_options.Languages.Contains(language) || score < _options.MinLanguageScore)
            return new Outcome(null, "language", $"{language} ({score:F2})", chars);

        var codeLines = extracted.CodeLines.Count == 0 ? null
            : extracted.CodeLines.Select(l => TextNormalizer.Normalize(l, _options.NormalizeNfkc).Trim()).ToHashSet(StringComparer.Ordinal);
        var document = new Document(text, language, codeLines);
        foreach (var step in Recipe.StepsFor(language))
        {
            var result = step.ExemptCode ? ApplyToProse(step.Filter, document) : step.Filter.Apply(document);
            if (result.Kept is null) return new Outcome(null, step.Filter.Name, result.Reason, chars);
            document = result.Kept;
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

    /// <summary>
    /// Runs a step on the document's prose lines only (an ExemptCode step): code lines are neither judged nor removed.
    /// Lines the step kept go back in their places between the code lines; a step that rewrites lines instead of
    /// only removing them gets its output followed by the code lines.
    /// </summary>
    private static StepResult ApplyToProse(ICleanerStep step, Document document)
    {
        if (document.CodeLines.Count == 0) return step.Apply(document);
        var prose = document.Lines.Where(l => !document.IsCode(l)).ToList();
        if (prose.Count == 0) return StepResult.Keep(document);
        var result = step.Apply(document.WithText(string.Join('\n', prose)));
        if (result.Kept is not { } kept) return result;
        var keptProse = kept.Lines;
        var merged = new List<string>(document.Lines.Length);
        var next = 0;
        foreach (var line in document.Lines)
        {
            if (document.IsCode(line)) merged.Add(line);
            else if (next < keptProse.Length && keptProse[next] == line) merged.Add(keptProse[next++]);
        }
        if (next < keptProse.Length) merged = [.. keptProse, .. document.Lines.Where(document.IsCode)];
        return StepResult.Keep(document.WithText(string.Join('\n', merged)));
    }
}
