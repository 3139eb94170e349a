using System.Text.RegularExpressions;

namespace Pipeline.Cleaner.Filters;

/// <summary>
/// LLM-jp corpus v1's Japanese text extraction for Common Crawl (llm-jp-corpus, scripts/data/ja_cc/filter.py): keep
/// only lines with hiragana or katakana, and cut URLs and runs of 100 or more ASCII characters out of them.
/// </summary>
public sealed partial class JapaneseLineFilter : ILineFilter
{
    public string Name => "japanese_lines";
    public int MaxAsciiRun { get; init; } = 100;

    private Regex? _asciiRun;

    public string? KeepLines(Document d)
    {
        var asciiRun = _asciiRun ??= new Regex($"[\\u0000-\\u007F]{{{MaxAsciiRun},}}", RegexOptions.CultureInvariant);
        var kept = new List<(int, string)>();
        for (var i = 0; i < d.Lines.Length; i++)
        {
            var line = d.Lines[i];
            if (!KanaRegex().IsMatch(line)) continue;
            var text = asciiRun.Replace(UrlRegex().Replace(line, ""), "").Trim();
            if (text.Length > 0) kept.Add((i, text));
        }
        return d.Join(kept);
    }

    [GeneratedRegex(@"[\p{IsHiragana}\p{IsKatakana}ー]")]
    private static partial Regex KanaRegex();

    [GeneratedRegex(@"https?://[\w/:%#\$&\?\(\)~\.=\+\-]+")]
    private static partial Regex UrlRegex();
}
