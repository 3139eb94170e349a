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
    public const int Scheme = 3;

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
        Permutations = count;
    }

    public int Permutations { get; }

    /// <summary>Normalizes: NFKC, lower case, punctuation removed, whitespace collapsed.</summary>
    public static string Normalize(string text)
    {
        var builder = new StringBuilder(text.Length);
        var space = false;
        // Clean shards are NFKC already (the cleaner normalizes); checking is much cheaper than normalizing again.
        foreach (var c in text.IsNormalized(NormalizationForm.FormKC) ? text : text.Normalize(NormalizationForm.FormKC))
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
            // Each word hashed once; an n-gram's hash combines its words' hashes (no n-gram strings are built).
            var words = new List<ulong>();
            foreach (var range in normalized.AsSpan().Split(' '))
            {
                var word = normalized.AsSpan(range);
                if (word.Length > 0) words.Add(Hash(word));
            }
            var n = _options.WordShingle;
            if (words.Count <= n) hashes.Add(Combine(words, 0, words.Count));
            else for (var i = 0; i + n <= words.Count; i++) hashes.Add(Combine(words, i, n));
        }
        return hashes;
    }

    /// <summary>The MinHash signature (Bands x Rows values).</summary>
    public uint[] Signature(string text, string language) => Signature(Distinct(text, language));

    /// <summary>
    /// The signature followed by the document's sketch: its smallest <see cref="DedupOptions.SketchSize"/> shingle
    /// hashes in ascending order. Verification compares sketches: exactly when both documents have fewer shingles than
    /// the sketch size (about 2.5 KB of text at 512), else by the bottom-k estimator, which is far less noisy at the
    /// threshold than comparing signatures.
    /// </summary>
    public uint[] Fingerprint(string text, string language)
    {
        var distinct = Distinct(text, language);
        var signature = Signature(distinct);
        if (_options.SketchSize <= 0) return signature;
        return [.. signature, .. distinct.AsSpan(0, Math.Min(distinct.Length, _options.SketchSize))];
    }

    /// <summary>Similarity of two fingerprints: from their sketches when they have them, else from their signatures.</summary>
    public double Similarity(uint[] a, uint[] b)
    {
        var p = Permutations;
        if (a.Length == p || b.Length == p) return EstimatedJaccard(a.AsSpan(0, p), b.AsSpan(0, p));
        return SketchJaccard(a.AsSpan(p), b.AsSpan(p), _options.SketchSize);
    }

    /// <summary>Exact Jaccard of two complete sorted sets; the bottom-k estimate when either was cut at k.</summary>
    public static double SketchJaccard(ReadOnlySpan<uint> a, ReadOnlySpan<uint> b, int k)
    {
        var complete = a.Length < k && b.Length < k;
        int i = 0, j = 0, taken = 0, both = 0;
        while ((i < a.Length || j < b.Length) && (complete || taken < k))
        {
            if (j >= b.Length || (i < a.Length && a[i] < b[j])) i++;
            else if (i >= a.Length || b[j] < a[i]) j++;
            else
            {
                both++;
                i++;
                j++;
            }
            taken++;
        }
        return taken == 0 ? 1 : (double)both / taken;
    }

    private static ulong Combine(List<ulong> words, int start, int count)
    {
        var h = 0x9E3779B97F4A7C15UL ^ (ulong)count;
        for (var k = 0; k < count; k++) h = (h ^ words[start + k]) * 0xBF58476D1CE4E5B9UL + 0x94D049BB133111EBUL;
        return h ^ (h >> 31);
    }

    /// <summary>The distinct 32-bit shingle hashes, ascending (sorting replaces a hash set and gives the sketch).</summary>
    private uint[] Distinct(string text, string language)
    {
        var shingles = Shingles(text, language);
        var folded = new uint[shingles.Count];
        for (var i = 0; i < folded.Length; i++) folded[i] = (uint)(shingles[i] ^ (shingles[i] >> 32));
        Array.Sort(folded);
        var unique = 0;
        for (var i = 0; i < folded.Length; i++)
            if (i == 0 || folded[i] != folded[i - 1]) folded[unique++] = folded[i];
        return folded[..unique];
    }

    private uint[] Signature(uint[] distinct)
    {
        // Permutation-major: each vector of eight permutations sweeps the whole shingle array with its running minimum
        // and seed in registers (shingle-major kept all 14 minima in memory and was half as fast). Two vectors per
        // sweep give the CPU two independent dependency chains.
        var lanes = Vector<uint>.Count;
        var all = new uint[_seeds.Length];
        var vectors = _seeds.Length / lanes;
        var v = 0;
        for (; v + 1 < vectors; v += 2)
        {
            var (a, b) = MinimaOf2(distinct, new Vector<uint>(_seeds, v * lanes), new Vector<uint>(_seeds, (v + 1) * lanes));
            a.CopyTo(all, v * lanes);
            b.CopyTo(all, (v + 1) * lanes);
        }
        if (v < vectors) MinimaOf2(distinct, new Vector<uint>(_seeds, v * lanes), Vector<uint>.Zero).A.CopyTo(all, v * lanes);
        return all.AsSpan(0, Permutations).ToArray();
    }

    private static (Vector<uint> A, Vector<uint> B) MinimaOf2(uint[] distinct, Vector<uint> seedA, Vector<uint> seedB)
    {
        var minA = new Vector<uint>(uint.MaxValue);
        var minB = minA;
        foreach (var x in distinct)
        {
            var shingle = new Vector<uint>(x);
            minA = Vector.Min(minA, Mix(shingle ^ seedA));
            minB = Vector.Min(minB, Mix(shingle ^ seedB));
        }
        return (minA, minB);
    }

    /// <summary>murmur3's 32-bit finalizer, lane-wise.</summary>
    private static Vector<uint> Mix(Vector<uint> h)
    {
        h ^= Vector.ShiftRightLogical(h, 16);
        h *= new Vector<uint>(0x85EBCA6Bu);
        h ^= Vector.ShiftRightLogical(h, 13);
        h *= new Vector<uint>(0xC2B2AE35u);
        return h ^ Vector.ShiftRightLogical(h, 16);
    }

    public static double EstimatedJaccard(ReadOnlySpan<uint> a, ReadOnlySpan<uint> b)
    {
        var same = 0;
        for (var i = 0; i < a.Length; i++) if (a[i] == b[i]) same++;
        return (double)same / a.Length;
    }

    private static ulong Hash(ReadOnlySpan<char> shingle) => XxHash3.HashToUInt64(MemoryMarshal.AsBytes(shingle));
}
