namespace Pipeline.Crawler;

/// <summary>The Crawler configuration section (Pipeline:Crawler). Defaults are polite.</summary>
public sealed class CrawlOptions
{
    public const string Section = "Pipeline:Crawler";

    public string UserAgent { get; set; } = "PipelineBot/0.1 (+https://example.invalid/pipeline-bot)";
    public int MaxPages { get; set; } = 10_000;
    public int MaxDepth { get; set; } = 8;
    public int GlobalConcurrency { get; set; } = 16;
    public int PerHostConcurrency { get; set; } = 1;
    /// <summary>Minimum delay between two requests to one host; robots.txt Crawl-delay raises it.</summary>
    public TimeSpan PerHostDelay { get; set; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(20);
    public int MaxRedirects { get; set; } = 5;
    public int MaxRetries { get; set; } = 3;
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(60);
    public int MaxBodyBytes { get; set; } = 2 * 1024 * 1024;
    /// <summary>Over the limit: keep the first MaxBodyBytes and flag the page as truncated (true) or skip it (false).</summary>
    public bool TruncateOversized { get; set; } = true;
    public int PagesPerShard { get; set; } = 1000;
    /// <summary>A shard is also closed when its pages' HTML reaches this many characters (whichever comes first).</summary>
    public long CharsPerShard { get; set; } = 256L * 1024 * 1024;
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
    /// <summary>Loopback, private and link-local addresses are refused unless this is set (tests, intranet crawls).</summary>
    public bool AllowPrivateAddresses { get; set; }
    public bool RespectRobots { get; set; } = true;
    /// <summary>Query parameters removed during normalization.</summary>
    public List<string> StrippedParameters { get; set; } =
        ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "fbclid", "sessionid", "phpsessid"];
}
