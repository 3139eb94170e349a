namespace Pipeline.Cleaner;

/// <summary>A document being cleaned, with the statistics the filters share, computed once.</summary>
public sealed class Document
{
    private static readonly char[] WordSeparators = [' ', '\n', '\t'];
    private static readonly IReadOnlySet<string> NoLines = new HashSet<string>();

    /// <param name="text">Lines separated by "\n", paragraphs by a blank line (as the extractor writes them).</param>
    /// <param name="codeLines">Lines that came from <c>&lt;pre&gt;</c> or <c>&lt;code&gt;</c> blocks (normalized, trimmed).</param>
    public Document(string text, string language, IReadOnlySet<string>? codeLines = null)
    {
        Text = text;
        Language = language;
        CodeLines = codeLines ?? NoLines;
        var lines = new List<string>();
        var paragraphOf = new List<int>();
        var paragraph = 0;
        var blankSinceLastLine = false;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            // Only an empty line separates paragraphs, as in Paragraphs ("\n\n"); a line of spaces (in a <pre> block)
            // is not a line, but not a break either.
            blankSinceLastLine |= raw.Length == 0;
            if (line.Length == 0) continue;
            if (blankSinceLastLine && lines.Count > 0) paragraph++;
            blankSinceLastLine = false;
            lines.Add(line);
            paragraphOf.Add(paragraph);
        }
        Lines = [.. lines];
        LineParagraphs = [.. paragraphOf];
        Words = text.Split(WordSeparators, StringSplitOptions.RemoveEmptyEntries).Where(w => w.Any(char.IsLetterOrDigit)).ToArray();
    }

    public string Text { get; }
    public string Language { get; }
    public bool IsJapanese => Language == "ja";
    public IReadOnlySet<string> CodeLines { get; }

    /// <summary>The non-blank lines, trimmed.</summary>
    public string[] Lines { get; }

    /// <summary>The paragraph each of <see cref="Lines"/> is in, counting from 0.</summary>
    public int[] LineParagraphs { get; }

    public string[] Words { get; }

    /// <summary>Paragraphs as Gopher and datatrove define them: text between blank lines.</summary>
    public string[] Paragraphs => Text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public bool IsCode(string line) => CodeLines.Contains(line);

    /// <summary>The same document with other text (after a step removed lines).</summary>
    public Document WithText(string text) => new(text, Language, CodeLines) { QualityScore = QualityScore };

    /// <summary>The quality classifier's score, once a recipe's quality step has scored the document (else NaN).</summary>
    public double QualityScore { get; private init; } = double.NaN;

    public Document WithQualityScore(double score) => new(Text, Language, CodeLines) { QualityScore = score };

    /// <summary>
    /// The text of some of this document's lines (by index into <see cref="Lines"/>, in order, possibly rewritten):
    /// one newline between lines of a paragraph, a blank line between paragraphs, so a step that removes lines keeps
    /// the paragraphs the later steps judge.
    /// </summary>
    public string Join(IEnumerable<(int Line, string Text)> kept)
    {
        var builder = new System.Text.StringBuilder();
        var previous = -1;
        foreach (var (line, text) in kept)
        {
            if (builder.Length > 0) builder.Append(LineParagraphs[line] == previous ? "\n" : "\n\n");
            builder.Append(text);
            previous = LineParagraphs[line];
        }
        return builder.ToString();
    }
}
