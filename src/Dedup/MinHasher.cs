using System.Globalization;
using System.Numerics;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace Pipeline.Dedup;

/// <summary>
/// MinHash signatures: shingles (word n-grams, or character n-grams for Japanese) hashed with XxHash3 and folded to
/// 32 bits, then one independently seeded 32-bit mixer (murmur3's finalizer) per permutation, minimum per
/// permutation. The permutations run eight at a time in <see cref="Vector{T}"/> lanes (AVX2), which is why they are
/// 32-bit mixers rather than 64-bit multiply-add pairs: AVX2 has no 64-bit multiply.
/// </summary>
public sealed class MinHasher
{
    /// <summary>Changes whenever signatures would change for the same text: the index refuses other versions.</summary>
    public const int Scheme = 2;

    private readonly uint[] _seeds;
    private readonly DedupOptions _options;

    public MinHasher(DedupOptions options)
    {
        _options = options;
        var count = options.Bands * options.Rows;
        var random = new Random((int)options.Seed);
        // Padded to whole vectors; the extra lanes are computed and ignored.
        _seeds = new uint[(count + Vector<uint>.Count - 1) / Vector<uint>.Count * Vector<uint>.Count];
        for (var i = 0; i < _seeds.Length; i++) _seeds[i] = (uint)random.NextInt64();
        PermutationCount = count;
    }

    private int PermutationCount { get; }

    public int Permutations => PermutationCount;

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
        var distinct = new HashSet<uint>();
        foreach (var x in Shingles(text, language)) distinct.Add((uint)(x ^ (x >> 32)));
        var lanes = Vector<uint>.Count;
        var minima = new Vector<uint>[_seeds.Length / lanes];
        var seeds = new Vector<uint>[minima.Length];
        for (var v = 0; v < minima.Length; v++)
        {
            minima[v] = new Vector<uint>(uint.MaxValue);
            seeds[v] = new Vector<uint>(_seeds, v * lanes);
        }
        var c1 = new Vector<uint>(0x85EBCA6Bu);
        var c2 = new Vector<uint>(0xC2B2AE35u);
        foreach (var x in distinct)
        {
            var shingle = new Vector<uint>(x);
            for (var v = 0; v < minima.Length; v++)
            {
                var h = shingle ^ seeds[v];
                h ^= Vector.ShiftRightLogical(h, 16);
                h *= c1;
                h ^= Vector.ShiftRightLogical(h, 13);
                h *= c2;
                h ^= Vector.ShiftRightLogical(h, 16);
                minima[v] = Vector.Min(minima[v], h);
            }
        }
        var signature = new uint[PermutationCount];
        var all = new uint[_seeds.Length];
        for (var v = 0; v < minima.Length; v++) minima[v].CopyTo(all, v * lanes);
        Array.Copy(all, signature, PermutationCount);
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
