namespace Pipeline.Cleaner.Filters;

/// <summary>llm-jp's zlib compression-ratio band against boilerplate (too compressible) and gibberish (too little).</summary>
public sealed class CompressionRatioFilter : IDocumentFilter
{
    public string Name => "compression_ratio";
    public double Min { get; init; } = 0.30;
    public double Max { get; init; } = 0.70;

    public string? Reject(Document d)
    {
        var ratio = TextStats.CompressionRatio(d.Text);
        return ratio < Min ? "too repetitive" : ratio > Max ? "too random" : null;
    }
}
