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
    /// <param name="JoinedBySpaces">Words, which the text separates with a space; characters it does not.</param>
    public readonly record struct Units(int[] Ids, int[] Lengths, bool JoinedBySpaces)
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
            return new Units(ids, lengths, JoinedBySpaces: true);
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
            return new Units(ids.ToArray(), lengths.ToArray(), JoinedBySpaces: false);
        }

        public long TotalChars() => Lengths.Sum(l => (long)l);

        /// <summary>
        /// 64-bit hashes of every n-gram, left to right, by a polynomial rolling hash (mod 2^64, odd base): O(length)
        /// whatever n is. Collisions are negligible for filter statistics.
        /// </summary>
        public ulong[] NGramKeys(int n)
        {
            const ulong Base = 0x100000001B3UL;
            var count = Ids.Length - n + 1;
            if (count <= 0) return [];
            ulong top = 1; // Base^(n-1)
            for (var k = 1; k < n; k++) top *= Base;
            var keys = new ulong[count];
            ulong h = 0;
            for (var k = 0; k < n; k++) h = h * Base + Mix(Ids[k]);
            keys[0] = h;
            for (var i = 1; i < count; i++)
            {
                h = (h - Mix(Ids[i - 1]) * top) * Base + Mix(Ids[i + n - 1]);
                keys[i] = h;
            }
            return keys;
        }

        // Spreads small ids over 64 bits so that the rolling sums do not collide for short alphabets.
        private static ulong Mix(int id) => ((ulong)(uint)id + 0x9E3779B97F4A7C15UL) * 0xBF58476D1CE4E5B9UL;
    }

    /// <summary>Fraction of characters covered by the most frequent n-gram (ties: the longer one).</summary>
    public static double TopNGramCharFraction(Units units, int n)
    {
        if (units.Count < n) return 0;
        var keys = units.NGramKeys(n);
        var counts = new Dictionary<ulong, (int Count, int Start)>(keys.Length);
        for (var i = 0; i < keys.Length; i++)
        {
            ref var entry = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(counts, keys[i], out var exists);
            entry = exists ? (entry.Count + 1, entry.Start) : (1, i);
        }
        int bestCount = 0, bestLength = 0;
        foreach (var (count, start) in counts.Values)
        {
            if (count < bestCount || count == 1) continue;
            var length = 0;
            for (var k = 0; k < n; k++) length += units.Lengths[start + k];
            if (count > bestCount || length > bestLength) (bestCount, bestLength) = (count, length);
        }
        if (bestCount <= 1) return 0;
        var total = units.TotalChars();
        return total == 0 ? 0 : (double)bestLength * bestCount / total;
    }

    /// <summary>Fraction of characters inside n-grams that occur more than once (overlaps counted once), first occurrences included.</summary>
    public static double DuplicatedNGramCharFraction(Units units, int n)
    {
        if (units.Count < n) return 0;
        var keys = units.NGramKeys(n);
        var first = new Dictionary<ulong, int>(keys.Length);
        // Covered ranges as a difference array: +1 at a range start, -1 after its end; O(length) whatever n is.
        var cover = new int[units.Count + 1];
        var firstMarked = new HashSet<int>();
        for (var i = 0; i < keys.Length; i++)
        {
            if (first.TryAdd(keys[i], i)) continue;
            var j = first[keys[i]];
            if (firstMarked.Add(j))
            {
                cover[j]++;
                cover[j + n]--;
            }
            cover[i]++;
            cover[i + n]--;
        }
        long total = 0, dup = 0;
        var depth = 0;
        for (var i = 0; i < units.Count; i++)
        {
            depth += cover[i];
            total += units.Lengths[i];
            if (depth > 0) dup += units.Lengths[i];
        }
        return total == 0 ? 0 : (double)dup / total;
    }

    /// <summary>
    /// Characters in repeats of n-grams, as datatrove's find_all_duplicate (FineWeb) counts them: left to right, an
    /// n-gram seen before counts its characters and the scan jumps past it; first occurrences do not count.
    /// </summary>
    public static long RepeatedNGramChars(Units units, int n)
    {
        if (units.Count < n) return 0;
        var keys = units.NGramKeys(n);
        var seen = new HashSet<ulong>(keys.Length);
        long repeated = 0;
        for (var i = 0; i < keys.Length;)
        {
            if (seen.Add(keys[i]))
            {
                i++;
                continue;
            }
            for (var k = 0; k < n; k++) repeated += units.Lengths[i + k];
            i += n;
        }
        return repeated;
    }

    /// <summary>Characters of the most frequent n-gram times its count (datatrove's find_top_duplicate).</summary>
    public static long TopNGramChars(Units units, int n)
    {
        if (units.Count < n) return 0;
        var keys = units.NGramKeys(n);
        var counts = new Dictionary<ulong, (int Count, int Start)>(keys.Length);
        for (var i = 0; i < keys.Length; i++)
        {
            ref var entry = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(counts, keys[i], out var exists);
            entry = exists ? (entry.Count + 1, entry.Start) : (1, i);
        }
        long best = 0;
        foreach (var (count, start) in counts.Values)
        {
            long length = units.JoinedBySpaces ? n - 1 : 0; // the spaces between words, as datatrove joins them
            for (var k = 0; k < n; k++) length += units.Lengths[start + k];
            best = Math.Max(best, length * count);
        }
        return best;
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
