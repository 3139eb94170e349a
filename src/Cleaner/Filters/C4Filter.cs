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
        // Case-insensitive searches instead of lower-cased copies of the text and of every line: c4 was a tenth of
        // the cleaner's time on documentation pages.
        if (d.Text.Contains("lorem ipsum", StringComparison.OrdinalIgnoreCase)) return null;
        if (DropCurlyBrace && d.Text.Contains('{')) return null;
        var kept = new List<(int, string)>();
        var sentences = 0;
        for (var i = 0; i < d.Lines.Length; i++)
        {
            var line = d.Lines[i];
            if (FilterNoTerminalPunctuation && !TextStats.EndsWithTerminal(line)) continue;
            if (d.IsJapanese ? line.Length < MinJapaneseCharsPerLine : !HasWords(line, MinWordsPerLine)) continue;
            if (HasLongWord(line)) continue;
            if (line.Contains("javascript", StringComparison.OrdinalIgnoreCase)) continue;
            if (PolicyRegex().IsMatch(line)) continue;
            kept.Add((i, line));
            sentences += SentenceRegex().Count(line);
        }
        return sentences < MinSentences ? null : d.Join(kept);
    }

    private static bool HasWords(string line, int count)
    {
        var words = 0;
        var inWord = false;
        foreach (var c in line)
        {
            if (c == ' ') inWord = false;
            else if (!inWord)
            {
                inWord = true;
                if (++words >= count) return true;
            }
        }
        return words >= count;
    }

    private bool HasLongWord(string line)
    {
        if (line.Length <= MaxWordLength) return false;
        var run = 0;
        foreach (var c in line)
        {
            run = c == ' ' ? 0 : run + 1;
            if (run > MaxWordLength) return true;
        }
        return false;
    }

    [GeneratedRegex(@"terms of use|privacy policy|cookie policy|uses cookies|use of cookies|use cookies|クッキー|利用規約", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex PolicyRegex();

    [GeneratedRegex(@"[.!?。！？](\s|$)|[。！？]")]
    private static partial Regex SentenceRegex();
}
