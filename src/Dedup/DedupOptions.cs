using System.ComponentModel.DataAnnotations;
namespace Pipeline.Dedup;

/// <summary>The Dedup configuration section (Pipeline:Dedup). Defaults follow datatrove/FineWeb (14 x 8, word 5-grams).</summary>
public sealed class DedupOptions
{
    public const string Section = "Pipeline:Dedup";

    [Range(1, 1024)]

    public int Bands { get; set; } = 14;
    [Range(1, 1024)]
    public int Rows { get; set; } = 8;
    /// <summary>Word n-grams for space-delimited languages.</summary>
    [Range(1, 64)]
    public int WordShingle { get; set; } = 5;
    /// <summary>Character n-grams for Japanese and other scripts without spaces.</summary>
    [Range(1, 64)]
    public int CharShingle { get; set; } = 5;
    /// <summary>Verify LSH candidates by estimated Jaccard against this threshold (removes most false positives).</summary>
    public bool Verify { get; set; } = true;
    /// <summary>Shingle hashes kept per document for verification (0 = verify on signatures). See MinHasher.Fingerprint.</summary>
    [Range(1, int.MaxValue)]
    public int SketchSize { get; set; } = 512;
    [Range(0.0, 1.0)]
    public double Threshold { get; set; } = 0.8;
    public ulong Seed { get; set; } = 1;
}
