namespace Pipeline.Contracts.Rows;

/// <summary>One row of a raw-page shard (schema: docs/schemas.md#raw-pages).</summary>
public sealed class RawPage
{
    public string Url { get; set; } = "";
    public string FinalUrl { get; set; } = "";
    public DateTime FetchTime { get; set; }
    public int Status { get; set; }
    public string ContentType { get; set; } = "";
    public string Charset { get; set; } = "";
    /// <summary>What decided <see cref="Charset"/>: "bom", "http", "meta" or "detected" (the crawler's CharsetDecoder.Sources).</summary>
    public string CharsetSource { get; set; } = "";
    public string? LanguageHint { get; set; }
    public string Html { get; set; } = "";
    public int OutLinks { get; set; }
    /// <summary>"crawl" or "warc:&lt;file&gt;@&lt;offset&gt;".</summary>
    public string Source { get; set; } = "crawl";
    public bool Truncated { get; set; }
}
