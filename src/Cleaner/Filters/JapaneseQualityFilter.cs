namespace Pipeline.Cleaner.Filters;

/// <summary>
/// Swallow corpus v1 quality rules for Japanese, computed on characters: length, hiragana/katakana/Japanese
/// fractions, sentence lengths, trailing ・ or …, and NG-word characters (list from a replaceable data file).
/// </summary>
public sealed class JapaneseQualityFilter(IReadOnlyList<string> ngWords) : IDocumentFilter
{
    public string Name => "japanese_quality";
    public int MinChars { get; init; } = 400;
    public int MinJapaneseChars { get; init; } = 400;
    public double MinHiragana { get; init; } = 0.2;
    public double MaxKatakana { get; init; } = 0.5;
    public double MinJapanese { get; init; } = 0.5;
    public double MinMeanSentence { get; init; } = 20;
    public double MaxMeanSentence { get; init; } = 90;
    public int MaxSentence { get; init; } = 200;
    public double MaxEllipsisSentences { get; init; } = 0.2;
    public double MaxNgWordChars { get; init; } = 0.05;

    /// <summary>
    /// Whether ASCII counts as Swallow counts it: in the hiragana and katakana fractions' denominator, in the length of
    /// the longest sentence, and as sentences of the sentence rules. Technical Japanese names commands, options and APIs in ASCII inside its prose (which pushes
    /// an ordinary sentence under the hiragana minimum), and leaves option lists and untranslated English paragraphs
    /// in place (short and long "sentences" without a Japanese character). The Japanese fraction counts every
    /// character either way.
    /// </summary>
    public bool CountAscii { get; init; } = true;

    public string? Reject(Document d)
    {
        if (!d.IsJapanese) return null;
        var text = d.Text;
        int hiragana = 0, katakana = 0, kanji = 0, chars = 0, ascii = 0;
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c)) continue;
            chars++;
            if (char.IsAscii(c)) ascii++;
            if (c is >= '\u3040' and <= '\u309F') hiragana++;
            else if (c is >= '\u30A0' and <= '\u30FF') katakana++;
            else if (c is >= '\u4E00' and <= '\u9FFF') kanji++;
        }
        var japanese = hiragana + katakana + kanji;
        if (chars < MinChars) return "too few characters";
        if (japanese < MinJapaneseChars) return "too few Japanese characters";
        var counted = CountAscii ? chars : Math.Max(1, chars - ascii);
        if ((double)hiragana / counted < MinHiragana) return "hiragana fraction";
        if ((double)katakana / counted > MaxKatakana) return "katakana fraction";
        // The Japanese fraction is over every character, except (CountAscii off) the lines without a Japanese character:
        // an option list, a command, an untranslated paragraph are left out as they are of the sentence rules, and the
        // Japanese of the page's own lines is what is judged. A page that is mostly ASCII still goes: the language
        // identifier and MinJapaneseChars judge the page as a whole.
        var fractionOver = CountAscii ? chars : text.Split('\n').Where(ContainsJapanese).Sum(l => l.Count(c => !char.IsWhiteSpace(c)));
        if ((double)japanese / Math.Max(1, fractionOver) < MinJapanese) return "Japanese fraction";
        var sentences = text.Split(['。', '．', '！', '？', '!', '?', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (!CountAscii) sentences = sentences.Where(ContainsJapanese).ToArray();
        if (sentences.Length > 0)
        {
            var mean = sentences.Average(s => s.Length);
            if (mean < MinMeanSentence || mean > MaxMeanSentence) return "mean sentence length";
            if (sentences.Max(SentenceLength) > MaxSentence) return "longest sentence";
            if ((double)sentences.Count(s => s.EndsWith('・') || s.EndsWith('…')) / sentences.Length > MaxEllipsisSentences) return "ellipsis sentences";
        }
        long ngChars = 0;
        foreach (var word in ngWords)
        {
            for (var at = text.IndexOf(word, StringComparison.Ordinal); at >= 0; at = text.IndexOf(word, at + word.Length, StringComparison.Ordinal))
                ngChars += word.Length;
        }
        if ((double)ngChars / chars >= MaxNgWordChars) return "NG words";
        return null;
    }

    // A sentence's length for the longest-sentence rule, which catches run-on text: as Swallow counts it, or (CountAscii
    // off) with each run of ASCII (a URL, a path, a command line's word) counted as one character, since a long URL
    // inside a sentence does not make it run-on. (The mean keeps every character: counted this way, the short lines of
    // a man page fall under its minimum of 20.)
    private int SentenceLength(string sentence)
    {
        if (CountAscii) return sentence.Length;
        int length = 0;
        var inAscii = false;
        foreach (var c in sentence)
        {
            var ascii = char.IsAscii(c) && !char.IsWhiteSpace(c);
            if (!ascii && !char.IsWhiteSpace(c)) length++;
            else if (ascii && !inAscii) length++;
            inAscii = ascii;
        }
        return length;
    }

    private static bool ContainsJapanese(string sentence)
    {
        foreach (var c in sentence)
            if (c is >= '\u3040' and <= '\u30FF' or >= '\u4E00' and <= '\u9FFF') return true;
        return false;
    }
}
