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
            QualityScore = double.IsNaN(document.QualityScore) ? double.NaN : Math.Round(document.QualityScore, 6),
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
        var lines = document.Lines;
        var prose = Enumerable.Range(0, lines.Length).Where(i => !document.IsCode(lines[i])).Select(i => (i, lines[i])).ToList();
        if (prose.Count == 0) return StepResult.Keep(document);
        var result = step.Apply(document.WithText(document.Join(prose)));
        if (result.Kept is not { } kept) return result;
        // A score the step gave the prose is the document's.
        if (!double.IsNaN(kept.QualityScore)) document = document.WithQualityScore(kept.QualityScore);
        var keptProse = kept.Lines;
        var merged = new List<(int, string)>(lines.Length);
        var next = 0;
        for (var i = 0; i < lines.Length; i++)
        {
            if (document.IsCode(lines[i])) merged.Add((i, lines[i]));
            else if (next < keptProse.Length && keptProse[next] == lines[i]) merged.Add((i, keptProse[next++]));
        }
        if (next < keptProse.Length)
        {
            var code = Enumerable.Range(0, lines.Length).Where(i => document.IsCode(lines[i])).Select(i => (i, lines[i])).ToList();
            return StepResult.Keep(document.WithText(code.Count == 0 ? kept.Text : kept.Text + "\n\n" + document.Join(code)));
        }
        return StepResult.Keep(document.WithText(document.Join(merged)));
    }
}
