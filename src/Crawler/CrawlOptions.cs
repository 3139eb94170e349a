using System.ComponentModel.DataAnnotations;
namespace Pipeline.Crawler;

/// <summary>The Crawler configuration section (Pipeline:Crawler). Defaults are polite.</summary>
public sealed class CrawlOptions : IValidatableObject
{
    public const string Section = "Pipeline:Crawler";

    public string UserAgent { get; set; } = "PipelineBot/0.1 (+https://example.invalid/pipeline-bot)";
    [Range(1, int.MaxValue)]
    public int MaxPages { get; set; } = 10_000;
    [Range(0, int.MaxValue)]
    public int MaxDepth { get; set; } = 8;
    [Range(1, int.MaxValue)]
    public int GlobalConcurrency { get; set; } = 16;
    [Range(1, int.MaxValue)]
    public int PerHostConcurrency { get; set; } = 1;
    /// <summary>Minimum delay between two requests to one host; robots.txt Crawl-delay raises it.</summary>
    public TimeSpan PerHostDelay { get; set; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(20);
    [Range(0, int.MaxValue)]
    public int MaxRedirects { get; set; } = 5;
    [Range(0, int.MaxValue)]
    public int MaxRetries { get; set; } = 3;
    /// <summary>
    /// A URL whose fetch still failed after its retries is tried again by a later run or resume of the crawl, up to
    /// this many attempts in all; then its failure is final.
    /// </summary>
    [Range(1, int.MaxValue)]
    public int MaxAttempts { get; set; } = 3;
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(60);
    [Range(1, int.MaxValue)]
    public int MaxBodyBytes { get; set; } = 2 * 1024 * 1024;
    /// <summary>Over the limit: keep the first MaxBodyBytes and flag the page as truncated (true) or skip it (false).</summary>
    public bool TruncateOversized { get; set; } = true;
    [Range(1, int.MaxValue)]
    public int PagesPerShard { get; set; } = 1000;
    /// <summary>A shard is also closed when its pages' HTML reaches this many characters (whichever comes first).</summary>
    [Range(1L, long.MaxValue)]
    public long CharsPerShard { get; set; } = 256L * 1024 * 1024;
    /// <summary>
    /// Row groups of a raw-page shard hold at most this many characters of HTML: the stages read a shard one row group
    /// at a time, so this, not the shard size, bounds their memory.
    /// </summary>
    [Range(1L, long.MaxValue)]
    public long CharsPerRowGroup { get; set; } = 32L * 1024 * 1024;
    /// <summary>Also archive every shard's responses as WARC (warc/&lt;run&gt;/crawl-NNNNN.warc.gz) for replay with --warc.</summary>
    public bool ArchiveWarc { get; set; }
    /// <summary>Hosts (or host suffixes with a leading dot) a crawl may leave its seeds for; empty = the seeds' hosts.</summary>
    public List<string> AllowedDomains { get; set; } = [];
    public List<string> AllowedPrefixes { get; set; } = [];
    public List<string> BlockedDomains { get; set; } = [];
    /// <summary>Regular expressions on the normalized URL (RefinedWeb-style URL filtering).</summary>
    public List<string> BlockedUrlPatterns { get; set; } = [];
    public List<string> SkippedExtensions { get; set; } =
        [".jpg", ".jpeg", ".png", ".gif", ".svg", ".webp", ".ico", ".pdf", ".zip", ".gz", ".tar", ".mp3", ".mp4", ".css", ".js", ".woff", ".woff2", ".exe", ".iso"];
    public List<string> AcceptedContentTypes { get; set; } = ["text/html", "application/xhtml+xml"];
    /// <summary>
    /// CIDR ranges a crawl may connect to besides public addresses, e.g. 127.0.0.0/8 for a loopback site or an
    /// intranet range. Link-local (metadata) addresses need a range inside 169.254.0.0/16 or fe80::/10 itself.
    /// </summary>
    public List<string> AllowedAddressRanges { get; set; } = [];
    /// <summary>
    /// An HTTP proxy for every request (http://host:port); none by default, and the environment's HTTP(S)_PROXY is
    /// ignored. Through a proxy, each target host is resolved and checked by the address guard before the request.
    /// </summary>
    public string? Proxy { get; set; }
    public bool RespectRobots { get; set; } = true;
    /// <summary>
    /// Rules the attributes cannot say: durations in range, and ranges and patterns that parse, so a bad value is an
    /// error naming its key when the service starts, not a failure of every fetch later.
    /// </summary>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (RequestTimeout <= TimeSpan.Zero || RequestTimeout > TimeSpan.FromHours(1))
            yield return new ValidationResult($"'{RequestTimeout}' must be more than zero and at most an hour", [nameof(RequestTimeout)]);
        foreach (var (name, value) in new[] { (nameof(PerHostDelay), PerHostDelay), (nameof(MaxRetryAfter), MaxRetryAfter) })
            if (value < TimeSpan.Zero || value > TimeSpan.FromDays(1))
                yield return new ValidationResult($"'{value}' must be zero or more and at most a day", [name]);
        for (var i = 0; i < AllowedAddressRanges.Count; i++)
            if (!System.Net.IPNetwork.TryParse(AllowedAddressRanges[i].Trim(), out _))
                yield return new ValidationResult($"'{AllowedAddressRanges[i]}' is not a CIDR range (for example 127.0.0.0/8 or 10.20.0.0/16)", [$"{nameof(AllowedAddressRanges)}:{i}"]);
        for (var i = 0; i < BlockedUrlPatterns.Count; i++)
        {
            string? error = null;
            try
            {
                _ = new System.Text.RegularExpressions.Regex(BlockedUrlPatterns[i]);
            }
            catch (ArgumentException e)
            {
                error = e.Message;
            }
            if (error is not null) yield return new ValidationResult($"'{BlockedUrlPatterns[i]}' is not a regular expression: {error}", [$"{nameof(BlockedUrlPatterns)}:{i}"]);
        }
        if (Proxy is { Length: > 0 } proxy && !(Uri.TryCreate(proxy, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttp))
            yield return new ValidationResult($"'{proxy}' is not an http://host:port proxy address", [nameof(Proxy)]);
    }

    /// <summary>Query parameters removed during normalization.</summary>
    public List<string> StrippedParameters { get; set; } =
        ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "fbclid", "sessionid", "phpsessid"];
}
