namespace Pipeline.Cleaner;

/// <summary>
/// A compact script-and-stop-word language identifier for the corpus languages: Japanese by kana and kanji, English
/// by Latin script and English function words; Chinese, Korean, Cyrillic and other Latin text are reported as zh, ko,
/// ru and "other". Accuracy on real text is in docs/benchmarks.md.
/// </summary>
public static class LanguageIdentifier
{
    private static readonly HashSet<string> EnglishWords =
    [
        "the", "be", "to", "of", "and", "a", "in", "that", "have", "it", "for", "not", "on", "with", "as", "you", "do", "at",
        "this", "by", "from", "or", "is", "are", "was", "an", "can", "if", "which", "use", "used", "file", "system", "package",
    ];

    public static (string Language, double Score) Identify(string text)
    {
        int kana = 0, han = 0, hangul = 0, latin = 0, cyrillic = 0, letters = 0;
        foreach (var c in text.Length > 20_000 ? text.AsSpan(0, 20_000) : text.AsSpan())
        {
            if (!char.IsLetter(c)) continue;
            letters++;
            if (c is >= '\u3040' and <= '\u30FF' or >= '\uFF66' and <= '\uFF9F') kana++;
            else if (c is >= '\u4E00' and <= '\u9FFF' or >= '\u3400' and <= '\u4DBF') han++;
            else if (c is >= '\uAC00' and <= '\uD7AF') hangul++;
            else if (c < '\u0250') latin++;
            else if (c is >= '\u0400' and <= '\u04FF') cyrillic++;
        }
        if (letters == 0) return ("unknown", 0);
        double japanese = (double)(kana + han) / letters;
        if (kana > 0 && japanese >= 0.2 && (double)kana / (kana + han) > 0.1)
            return ("ja", Math.Min(1, japanese + 0.5));
        if (han > latin && han > hangul) return ("zh", (double)han / letters);
        if (hangul > latin) return ("ko", (double)hangul / letters);
        if (cyrillic > latin) return ("ru", (double)cyrillic / letters);

        var words = text.Length > 20_000 ? text[..20_000] : text;
        int total = 0, english = 0;
        foreach (var word in words.Split((char[])[' ', '\n', '\t', ',', '.', ';', ':', '(', ')', '"', '!', '?'], StringSplitOptions.RemoveEmptyEntries))
        {
            if (!char.IsLetter(word[0])) continue;
            total++;
            if (EnglishWords.Contains(word.ToLowerInvariant())) english++;
        }
        if (total == 0) return ("unknown", 0);
        double latinShare = (double)latin / letters;
        double stopRate = (double)english / total;
        // Running English prose has 25-45% function words; other Latin-script languages have almost none of these.
        var score = latinShare * Math.Min(1, 0.35 + stopRate * 2.5);
        return stopRate >= 0.08 ? ("en", score) : ("other", latinShare * (1 - stopRate * 5));
    }
}
