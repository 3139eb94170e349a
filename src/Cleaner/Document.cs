namespace Pipeline.Cleaner;

/// <summary>A document being cleaned, with the statistics the filters share, computed once.</summary>
public sealed class Document(string text, string language)
{
    private static readonly char[] WordSeparators = [' ', '\n', '\t'];

    public string Text { get; } = text;
    public string Language { get; } = language;
    public bool IsJapanese => Language == "ja";
    public string[] Lines { get; } = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    public string[] Words { get; } = text.Split(WordSeparators, StringSplitOptions.RemoveEmptyEntries).Where(w => w.Any(char.IsLetterOrDigit)).ToArray();
    public string[] Paragraphs => Text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
