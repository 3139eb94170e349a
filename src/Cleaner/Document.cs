namespace Pipeline.Cleaner;

/// <summary>A document being cleaned, with the statistics the filters share, computed once.</summary>
/// <param name="codeLines">Lines that came from <c>&lt;pre&gt;</c> or <c>&lt;code&gt;</c> blocks (normalized, trimmed).</param>
public sealed class Document(string text, string language, IReadOnlySet<string>? codeLines = null)
{
    private static readonly char[] WordSeparators = [' ', '\n', '\t'];
    private static readonly IReadOnlySet<string> NoLines = new HashSet<string>();

    public string Text { get; } = text;
    public string Language { get; } = language;
    public bool IsJapanese => Language == "ja";
    public IReadOnlySet<string> CodeLines { get; } = codeLines ?? NoLines;
    public string[] Lines { get; } = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    public string[] Words { get; } = text.Split(WordSeparators, StringSplitOptions.RemoveEmptyEntries).Where(w => w.Any(char.IsLetterOrDigit)).ToArray();
    public string[] Paragraphs => Text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public bool IsCode(string line) => CodeLines.Contains(line);

    /// <summary>The same document with other text (after a step removed lines).</summary>
    public Document WithText(string text) => new(text, Language, CodeLines);
}
