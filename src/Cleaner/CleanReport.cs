namespace Pipeline.Cleaner;

/// <summary>What the cleaner removed, by rule in pipeline order (RefinedWeb's removal table).</summary>
public sealed class CleanReport
{
    public int Input { get; set; }
    public long InputChars { get; set; }
    public int Kept { get; set; }
    public long KeptChars { get; set; }
    public int PiiMasked { get; set; }
    public Dictionary<string, RuleCount> Removed { get; set; } = [];
    public Dictionary<string, int> Languages { get; set; } = [];

    public void Remove(string rule, long chars)
    {
        var count = Removed.TryGetValue(rule, out var c) ? c : Removed[rule] = new RuleCount();
        count.Documents++;
        count.Chars += chars;
    }

    public void Add(CleanReport other)
    {
        Input += other.Input;
        InputChars += other.InputChars;
        Kept += other.Kept;
        KeptChars += other.KeptChars;
        PiiMasked += other.PiiMasked;
        foreach (var (rule, count) in other.Removed)
        {
            var mine = Removed.TryGetValue(rule, out var c) ? c : Removed[rule] = new RuleCount();
            mine.Documents += count.Documents;
            mine.Chars += count.Chars;
        }
        foreach (var (language, count) in other.Languages)
            Languages[language] = Languages.GetValueOrDefault(language) + count;
    }
}

public sealed class RuleCount
{
    public int Documents { get; set; }
    public long Chars { get; set; }
}
