namespace Pipeline.Cleaner.Tests;

/// <summary>Real pages of the shipped sample site (Debian Reference, English and Japanese).</summary>
internal static class Fixtures
{
    public static string[] Pages(string language) =>
        Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "fixtures", language), "*.html").Order(StringComparer.Ordinal).ToArray();

    /// <summary>
    /// Paragraphs of at least <paramref name="minChars"/> characters extracted from the real pages. The Japanese
    /// translation leaves some paragraphs in English, with only the titles of cross-references (「...」) translated;
    /// a paragraph of the Japanese pages with no Japanese outside such references is labelled "en".
    /// </summary>
    public static List<string> Paragraphs(string language, int minChars)
    {
        var japanese = AllParagraphs("ja", minChars);
        return language == "en"
            ? AllParagraphs("en", minChars).Concat(japanese.Where(UntranslatedEnglish)).Distinct().ToList()
            : japanese.Where(p => !UntranslatedEnglish(p)).ToList();
    }

    private static bool UntranslatedEnglish(string paragraph) =>
        !System.Text.RegularExpressions.Regex.Replace(paragraph, "「[^」]*」|\\([^)]*章[^)]*\\)", "").Any(c => c >= '\u3040' && c <= '\u9FFF');

    private static List<string> AllParagraphs(string language, int minChars) =>
        Pages(language)
            .SelectMany(p => TextExtractor.Extract(File.ReadAllText(p)).Text.Split('\n'))
            .Select(l => TextNormalizer.Normalize(l, true).Trim())
            .Where(l => l.Length >= minChars)
            .Distinct()
            .ToList();
}
