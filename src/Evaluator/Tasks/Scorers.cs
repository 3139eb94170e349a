using System.Globalization;

namespace Pipeline.Evaluator.Tasks;

/// <summary>
/// Scores of a generated text against a reference. Character-level F1 and ROUGE-L suit Japanese, which has no word
/// boundaries; both work on text elements (so an emoji or a combining sequence is one unit) with whitespace removed.
/// </summary>
public static class Scorers
{
    public static double ExactMatch(string output, string reference) => output.Trim() == reference.Trim() ? 1 : 0;

    private static List<string> Units(string text)
    {
        var units = new List<string>();
        var e = StringInfo.GetTextElementEnumerator(text);
        while (e.MoveNext())
        {
            var element = (string)e.Current;
            if (!string.IsNullOrWhiteSpace(element)) units.Add(element);
        }
        return units;
    }

    /// <summary>F1 of the multisets of characters (SQuAD's token F1, on characters).</summary>
    public static double CharF1(string output, string reference)
    {
        var o = Units(output);
        var r = Units(reference);
        if (o.Count == 0 || r.Count == 0) return o.Count == r.Count ? 1 : 0;
        var counts = r.GroupBy(u => u).ToDictionary(g => g.Key, g => g.Count());
        var common = 0;
        foreach (var u in o)
        {
            if (counts.TryGetValue(u, out var c) && c > 0)
            {
                counts[u] = c - 1;
                common++;
            }
        }
        if (common == 0) return 0;
        double precision = (double)common / o.Count, recall = (double)common / r.Count;
        return 2 * precision * recall / (precision + recall);
    }

    /// <summary>ROUGE-L F1 (beta 1) over characters: longest common subsequence.</summary>
    public static double RougeL(string output, string reference)
    {
        var o = Units(output);
        var r = Units(reference);
        if (o.Count == 0 || r.Count == 0) return o.Count == r.Count ? 1 : 0;
        var previous = new int[r.Count + 1];
        var current = new int[r.Count + 1];
        for (var i = 1; i <= o.Count; i++)
        {
            for (var j = 1; j <= r.Count; j++)
                current[j] = o[i - 1] == r[j - 1] ? previous[j - 1] + 1 : Math.Max(previous[j], current[j - 1]);
            (previous, current) = (current, previous);
        }
        var lcs = previous[r.Count];
        if (lcs == 0) return 0;
        double precision = (double)lcs / o.Count, recall = (double)lcs / r.Count;
        return 2 * precision * recall / (precision + recall);
    }
}
