using System.IO.Compression;
using System.Text;

namespace Pipeline.Cleaner.Filters;

/// <summary>Repetition statistics shared by the Gopher, FineWeb and Japanese filters (Rae et al. 2021, appendix A).</summary>
public static class TextStats
{
    /// <summary>(fraction of duplicate items, fraction of characters in duplicate items).</summary>
    public static (double Items, double Chars) Duplicates(IReadOnlyList<string> items)
    {
        if (items.Count == 0) return (0, 0);
        var seen = new HashSet<string>();
        int duplicates = 0, duplicateChars = 0, totalChars = 0;
        foreach (var item in items)
        {
            totalChars += item.Length;
            if (!seen.Add(item))
            {
                duplicates++;
                duplicateChars += item.Length;
            }
        }
        return ((double)duplicates / items.Count, totalChars == 0 ? 0 : (double)duplicateChars / totalChars);
    }

    /// <summary>Fraction of characters covered by the most frequent n-gram.</summary>
    public static double TopNGramCharFraction(IReadOnlyList<string> units, int n)
    {
        if (units.Count < n) return 0;
        var counts = new Dictionary<string, int>();
        for (var i = 0; i + n <= units.Count; i++)
        {
            var key = string.Join('\u0001', units.Skip(i).Take(n));
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }
        var (top, count) = counts.MaxBy(kv => kv.Value * kv.Key.Length);
        if (count <= 1) return 0;
        var total = units.Sum(u => u.Length);
        return total == 0 ? 0 : (double)(top.Replace("\u0001", "").Length * count) / total;
    }

    /// <summary>Fraction of characters inside n-grams that occur more than once (overlaps counted once).</summary>
    public static double DuplicatedNGramCharFraction(IReadOnlyList<string> units, int n)
    {
        if (units.Count < n) return 0;
        var first = new Dictionary<string, int>();
        var covered = new bool[units.Count];
        for (var i = 0; i + n <= units.Count; i++)
        {
            var key = string.Join('\u0001', units.Skip(i).Take(n));
            if (first.TryGetValue(key, out var j))
            {
                for (var k = 0; k < n; k++)
                {
                    covered[i + k] = true;
                    covered[j + k] = true;
                }
            }
            else
            {
                first[key] = i;
            }
        }
        long total = 0, dup = 0;
        for (var i = 0; i < units.Count; i++)
        {
            total += units[i].Length;
            if (covered[i]) dup += units[i].Length;
        }
        return total == 0 ? 0 : (double)dup / total;
    }

    /// <summary>zlib-compressed size over raw UTF-8 size: low for boilerplate and repetition, high for gibberish.</summary>
    public static double CompressionRatio(string text)
    {
        var raw = Encoding.UTF8.GetBytes(text);
        if (raw.Length == 0) return 0;
        using var output = new MemoryStream();
        using (var zlib = new ZLibStream(output, CompressionLevel.Optimal, leaveOpen: true))
            zlib.Write(raw);
        return (double)output.Length / raw.Length;
    }

    public static bool EndsWithTerminal(string line) =>
        line.Length > 0 && line[^1] is '.' or '!' or '?' or '"' or '\'' or '。' or '！' or '？' or '」' or '』' or ')' or '）' or ':';
}
