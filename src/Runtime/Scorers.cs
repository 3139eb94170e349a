using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Pipeline.Runtime;

/// <summary>
/// Scores of a generated text against a reference (the evaluator's generation tasks, and GRPO's verifiable rewards), under the names and definitions of the references they come
/// from. Outputs and references are NFKC-normalized and stripped first, as llm-jp-eval does (its
/// <c>normalize</c>: <c>unicodedata.normalize("NFKC", ...)</c>), so full-width and half-width forms compare equal.
/// </summary>
public static partial class Scorers
{
    /// <summary>The metric names a generation task may ask for.</summary>
    public static readonly IReadOnlyList<string> Generation = ["exact_match", "char_f1", "set_f1", "jsquad_char_f1", "char_lcs_f1", "judge"];

    public static string Normalize(string text) => text.Normalize(NormalizationForm.FormKC).Trim();

    /// <summary>llm-jp-eval <c>exact_match</c>: <c>(y_pred == y_true) * 1.0</c> on normalized text.</summary>
    public static double ExactMatch(string output, string reference) => Normalize(output) == Normalize(reference) ? 1 : 0;

    /// <summary>
    /// llm-jp-eval <c>char_f1</c>: <c>fuzz.token_sort_ratio(y_pred, y_true) / 100</c> (thefuzz). Each side is
    /// processed as thefuzz's <c>full_process</c> with <c>force_ascii</c> does (characters U+0080-U+00FF removed,
    /// every non-word character turned into a space, lower-cased, stripped); its whitespace-separated tokens are
    /// sorted and joined with one space; the ratio is the InDel similarity 2·LCS/(|a|+|b|) over code points, as a
    /// whole percentage (thefuzz rounds to an integer). An empty side scores 0. Order-aware, unlike a bag of
    /// characters: "東京都" against "都京東" is 0.33, not 1.
    /// </summary>
    public static double CharF1(string output, string reference)
    {
        var a = SortedTokens(Normalize(output));
        var b = SortedTokens(Normalize(reference));
        if (a.Length == 0 || b.Length == 0) return 0;
        var lcs = LongestCommonSubsequence(a, b);
        return Math.Round(100.0 * 2 * lcs / (a.Length + b.Length), MidpointRounding.ToEven) / 100.0;
    }

    /// <summary>
    /// llm-jp-eval <c>set_f1</c>: the reference and the output are sets of lines (each stripped); precision is the
    /// share of distinct output lines found among the reference lines, recall the same count over the reference lines.
    /// </summary>
    public static double SetF1(string output, string reference)
    {
        var truth = Normalize(reference).Split('\n').Select(x => x.Trim()).ToList();
        var predicted = Normalize(output).Split('\n').Select(x => x.Trim()).Distinct().ToList();
        var hits = predicted.Count(truth.Contains);
        double precision = (double)hits / predicted.Count, recall = (double)hits / truth.Count;
        return precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
    }

    /// <summary>
    /// JSQuAD's character F1 (JGLUE): SQuAD's token F1 with characters as tokens, a bag of characters (whitespace
    /// removed; text elements, so an emoji or a combining sequence is one unit). Order-blind.
    /// </summary>
    public static double JsquadCharF1(string output, string reference)
    {
        var o = Units(Normalize(output));
        var r = Units(Normalize(reference));
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

    /// <summary>
    /// F1 of the longest common subsequence of characters (whitespace removed, text elements): ROUGE-L's formula with
    /// characters as tokens. Not called rouge_l, because ROUGE as llm-jp-eval and others compute it runs over words.
    /// </summary>
    public static double CharLcsF1(string output, string reference)
    {
        var o = Units(Normalize(output));
        var r = Units(Normalize(reference));
        if (o.Count == 0 || r.Count == 0) return o.Count == r.Count ? 1 : 0;
        var lcs = LongestCommonSubsequence(o, r);
        if (lcs == 0) return 0;
        double precision = (double)lcs / o.Count, recall = (double)lcs / r.Count;
        return 2 * precision * recall / (precision + recall);
    }

    /// <summary>lm-eval's <c>mean_stderr</c>: the sample standard deviation (n−1) over √n; null below two items.</summary>
    public static double? MeanStderr(IReadOnlyList<double> values)
    {
        if (values.Count < 2) return null;
        var mean = values.Average();
        var variance = values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1);
        return Math.Sqrt(variance / values.Count);
    }

    private static int[] SortedTokens(string text)
    {
        // thefuzz's full_process(force_ascii=True): asciidammit drops chr(128)..chr(255) only; then \W -> space.
        var kept = new string(text.Where(c => c is < '\u0080' or > '\u00FF').ToArray());
        var processed = NonWord().Replace(kept, " ").ToLowerInvariant().Trim();
        var sorted = string.Join(' ', processed.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal)).Trim();
        var codePoints = new List<int>();
        for (var i = 0; i < sorted.Length; i += char.IsSurrogatePair(sorted, i) ? 2 : 1) codePoints.Add(char.ConvertToUtf32(sorted, i));
        return codePoints.ToArray();
    }

    // Python's re \W in Unicode mode: not str.isalnum() (letters L*, numbers N*) and not '_'. Combining marks are
    // \W there too; after NFKC, kana with dakuten are single composed letters.
    [GeneratedRegex(@"[^\p{L}\p{N}_]")]
    private static partial Regex NonWord();

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

    private static int LongestCommonSubsequence<T>(IReadOnlyList<T> a, IReadOnlyList<T> b)
    {
        var previous = new int[b.Count + 1];
        var current = new int[b.Count + 1];
        for (var i = 1; i <= a.Count; i++)
        {
            for (var j = 1; j <= b.Count; j++)
                current[j] = EqualityComparer<T>.Default.Equals(a[i - 1], b[j - 1]) ? previous[j - 1] + 1 : Math.Max(previous[j], current[j - 1]);
            (previous, current) = (current, previous);
        }
        return previous[b.Count];
    }
}
