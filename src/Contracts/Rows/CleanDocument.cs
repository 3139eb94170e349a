namespace Pipeline.Contracts.Rows;

/// <summary>One row of a clean-document shard (schema: docs/schemas.md#clean-documents).</summary>
public sealed class CleanDocument
{
    public string Id { get; set; } = "";
    public string Url { get; set; } = "";
    public string Title { get; set; } = "";
    public string Text { get; set; } = "";
    public string Language { get; set; } = "";
    public double LanguageScore { get; set; }
    public int Chars { get; set; }
    public int Words { get; set; }
    public int Lines { get; set; }
    public double DuplicateLineCharFraction { get; set; }
    public double CompressionRatio { get; set; }
    public int PiiMasked { get; set; }

    /// <summary>The quality classifier's score (recipe step `quality`), or NaN when the recipe has no such step.</summary>
    public double QualityScore { get; set; } = double.NaN;
    public string SourceShard { get; set; } = "";
}
