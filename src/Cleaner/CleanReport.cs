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
    /// <summary>The removal rules in the order the cleaner applies them (<see cref="Recipe.RemovalOrder"/>).</summary>
    public List<string> RemovalOrder { get; set; } = [];

    /// <summary>The removals in <see cref="RemovalOrder"/>, then any other rule by name: the same order in every run.</summary>
    public IEnumerable<(string Rule, RuleCount Count)> RemovalsInOrder() =>
        Removed.OrderBy(kv => RemovalOrder.IndexOf(kv.Key) is var i and >= 0 ? i : int.MaxValue).ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => (kv.Key, kv.Value));

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
        if (RemovalOrder.Count == 0) RemovalOrder = [.. other.RemovalOrder];
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
