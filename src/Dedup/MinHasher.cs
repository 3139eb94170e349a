using System.Globalization;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace Pipeline.Dedup;

/// <summary>
/// MinHash signatures: shingles (word n-grams, or character n-grams for Japanese) hashed with XxHash3, permuted by
/// multiply-add in 64-bit arithmetic (a universal family) keeping the high 32 bits, minimum per permutation.
/// </summary>
public sealed class MinHasher
{
    private readonly ulong[] _a;
    private readonly ulong[] _b;
    private readonly DedupOptions _options;

    public MinHasher(DedupOptions options)
    {
        _options = options;
        var count = options.Bands * options.Rows;
        var random = new Random((int)options.Seed);
        _a = new ulong[count];
        _b = new ulong[count];
        for (var i = 0; i < count; i++)
        {
            _a[i] = (ulong)random.NextInt64() | 1UL;
            _b[i] = (ulong)random.NextInt64();
        }
    }

    public int Permutations => _a.Length;

    /// <summary>Normalizes: NFKC, lower case, punctuation removed, whitespace collapsed.</summary>
    public static string Normalize(string text)
    {
        var builder = new StringBuilder(text.Length);
        var space = false;
        foreach (var c in text.Normalize(NormalizationForm.FormKC))
        {
            var category = char.GetUnicodeCategory(c);
            if (char.IsWhiteSpace(c) || category is UnicodeCategory.OtherPunctuation or UnicodeCategory.DashPunctuation
                or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
                or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.ConnectorPunctuation)
            {
                space = builder.Length > 0;
                continue;
            }
            if (space) builder.Append(' ');
            space = false;
            builder.Append(char.ToLowerInvariant(c));
        }
        return builder.ToString();
    }

    /// <summary>Hashes of the document's shingles; a text shorter than n is one shingle (never skipped).</summary>
    public List<ulong> Shingles(string text, string language)
    {
        var normalized = Normalize(text);
        var hashes = new List<ulong>();
        if (language is "ja" or "zh")
        {
            var chars = normalized.Replace(" ", "");
            var n = _options.CharShingle;
            if (chars.Length <= n) hashes.Add(Hash(chars.AsSpan()));
            else for (var i = 0; i + n <= chars.Length; i++) hashes.Add(Hash(chars.AsSpan(i, n)));
        }
        else
        {
            var words = normalized.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var n = _options.WordShingle;
            if (words.Length <= n) hashes.Add(Hash(string.Join(' ', words).AsSpan()));
            else for (var i = 0; i + n <= words.Length; i++) hashes.Add(Hash(string.Join(' ', words, i, n).AsSpan()));
        }
        return hashes;
    }

    public uint[] Signature(string text, string language)
    {
        var shingles = Shingles(text, language);
        var signature = new uint[_a.Length];
        Array.Fill(signature, uint.MaxValue);
        var distinct = new HashSet<ulong>(shingles);
        foreach (var x in distinct)
        {
            for (var p = 0; p < _a.Length; p++)
            {
                var h = (uint)((_a[p] * x + _b[p]) >> 32);
                if (h < signature[p]) signature[p] = h;
            }
        }
        return signature;
    }

    public static double EstimatedJaccard(ReadOnlySpan<uint> a, ReadOnlySpan<uint> b)
    {
        var same = 0;
        for (var i = 0; i < a.Length; i++) if (a[i] == b[i]) same++;
        return (double)same / a.Length;
    }

    private static ulong Hash(ReadOnlySpan<char> shingle) => XxHash3.HashToUInt64(MemoryMarshal.AsBytes(shingle));
}
