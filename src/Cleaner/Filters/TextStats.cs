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

    /// <summary>Words (or characters) as integer ids with their lengths, so n-grams hash without building strings.</summary>
    public readonly record struct Units(int[] Ids, int[] Lengths)
    {
        public int Count => Ids.Length;

        public static Units FromWords(IReadOnlyList<string> words, int max = 100_000)
        {
            var count = Math.Min(words.Count, max);
            var ids = new int[count];
            var lengths = new int[count];
            var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < count; i++)
            {
                if (!vocabulary.TryGetValue(words[i], out var id)) vocabulary[words[i]] = id = vocabulary.Count;
                ids[i] = id;
                lengths[i] = words[i].Length;
            }
            return new Units(ids, lengths);
        }

        /// <summary>
        /// Units for Japanese: every kana/kanji/punctuation character is a unit, but a run of Latin letters or digits
        /// is one unit (a word), so the English passages and commands that Japanese pages mix in are not counted as
        /// letter n-grams. Whitespace is skipped.
        /// </summary>
        public static Units FromChars(string text, int max = 200_000)
        {
            var ids = new List<int>();
            var lengths = new List<int>();
            var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < text.Length && ids.Count < max; i++)
            {
                var c = text[i];
                if (char.IsWhiteSpace(c)) continue;
                if (c < 0x250 && char.IsLetterOrDigit(c))
                {
                    var start = i;
                    while (i + 1 < text.Length && text[i + 1] < 0x250 && char.IsLetterOrDigit(text[i + 1])) i++;
                    var word = text.Substring(start, i - start + 1);
                    if (!vocabulary.TryGetValue(word, out var id)) vocabulary[word] = id = 0x110000 + vocabulary.Count;
                    ids.Add(id);
                    lengths.Add(word.Length);
                    continue;
                }
                ids.Add(c);
                lengths.Add(1);
            }
            return new Units(ids.ToArray(), lengths.ToArray());
        }

        public long TotalChars() => Lengths.Sum(l => (long)l);

        /// <summary>A 64-bit hash of the n units starting at i (collisions are negligible for filter statistics).</summary>
        public ulong NGramKey(int i, int n)
        {
            var h = 14695981039346656037UL;
            for (var k = 0; k < n; k++) h = (h ^ (uint)Ids[i + k]) * 1099511628211UL;
            return h;
        }
    }

    /// <summary>Fraction of characters covered by the most frequent n-gram (ties: the longer one).</summary>
    public static double TopNGramCharFraction(Units units, int n)
    {
        if (units.Count < n) return 0;
        var counts = new Dictionary<ulong, (int Count, int Start)>();
        for (var i = 0; i + n <= units.Count; i++)
        {
            var key = units.NGramKey(i, n);
            counts[key] = counts.TryGetValue(key, out var e) ? (e.Count + 1, e.Start) : (1, i);
        }
        int bestCount = 0, bestLength = 0;
        foreach (var (count, start) in counts.Values)
        {
            if (count < bestCount) continue;
            var length = 0;
            for (var k = 0; k < n; k++) length += units.Lengths[start + k];
            if (count > bestCount || length > bestLength) (bestCount, bestLength) = (count, length);
        }
        if (bestCount <= 1) return 0;
        var total = units.TotalChars();
        return total == 0 ? 0 : (double)bestLength * bestCount / total;
    }

    /// <summary>Fraction of characters inside n-grams that occur more than once (overlaps counted once).</summary>
    public static double DuplicatedNGramCharFraction(Units units, int n)
    {
        if (units.Count < n) return 0;
        var first = new Dictionary<ulong, int>();
        var covered = new bool[units.Count];
        for (var i = 0; i + n <= units.Count; i++)
        {
            var key = units.NGramKey(i, n);
            if (first.TryAdd(key, i)) continue;
            var j = first[key];
            for (var k = 0; k < n; k++)
            {
                covered[i + k] = true;
                covered[j + k] = true;
            }
        }
        long total = 0, dup = 0;
        for (var i = 0; i < units.Count; i++)
        {
            total += units.Lengths[i];
            if (covered[i]) dup += units.Lengths[i];
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
