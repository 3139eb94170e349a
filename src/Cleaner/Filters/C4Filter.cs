using System.Text.RegularExpressions;

namespace Pipeline.Cleaner.Filters;

/// <summary>
/// C4 rules (Raffel et al. 2020): keep lines that end in terminal punctuation and have at least 3 words, drop lines
/// with a word over 1,000 characters, JavaScript notices and cookie/terms lines; drop documents with "lorem ipsum"
/// or a curly brace, or with fewer than 5 sentences left. Japanese lines count characters, not words. Defaults are
/// datatrove's C4QualityFilter's.
/// </summary>
public sealed partial class C4Filter : ILineFilter
{
    public string Name => "c4";
    public int MinWordsPerLine { get; init; } = 3;
    public int MinJapaneseCharsPerLine { get; init; } = 10;
    public int MaxWordLength { get; init; } = 1000;
    public int MinSentences { get; init; } = 5;
    public bool DropCurlyBrace { get; init; } = true;
    /// <summary>Drop lines that do not end in terminal punctuation (C4); FineWeb turns this off.</summary>
    public bool FilterNoTerminalPunctuation { get; init; } = true;

    public string? KeepLines(Document d)
    {
        var lower = d.Text.ToLowerInvariant();
        if (lower.Contains("lorem ipsum")) return null;
        if (DropCurlyBrace && d.Text.Contains('{')) return null;
        var kept = new List<string>();
        foreach (var line in d.Lines)
        {
            if (FilterNoTerminalPunctuation && !TextStats.EndsWithTerminal(line)) continue;
            var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (d.IsJapanese ? line.Length < MinJapaneseCharsPerLine : words.Length < MinWordsPerLine) continue;
            if (words.Any(w => w.Length > MaxWordLength)) continue;
            var l = line.ToLowerInvariant();
            if (l.Contains("javascript")) continue;
            if (PolicyRegex().IsMatch(l)) continue;
            kept.Add(line);
        }
        var sentences = kept.Sum(l => SentenceRegex().Matches(l).Count);
        return sentences < MinSentences ? null : string.Join('\n', kept);
    }

    [GeneratedRegex(@"terms of use|privacy policy|cookie policy|uses cookies|use of cookies|use cookies|クッキー|利用規約")]
    private static partial Regex PolicyRegex();

    [GeneratedRegex(@"[.!?。！？](\s|$)|[。！？]")]
    private static partial Regex SentenceRegex();
}
