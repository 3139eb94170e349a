using System.Text.RegularExpressions;

namespace Pipeline.Crawler;

/// <summary>
/// The two page signals an archive ingest records (the &lt;html lang&gt; hint and the count of &lt;a href&gt; links) by
/// scanning the markup instead of building a DOM: WARC ingestion never follows links, and a full parse would cost
/// more than reading the archive. The live crawl, which must resolve links, uses <see cref="LinkExtractor"/>.
/// </summary>
public static partial class QuickHtmlSignals
{
    public static (string? Language, int Links) Scan(string html)
    {
        var lang = HtmlLangRegex().Match(html.Length > 4096 ? html[..4096] : html);
        return (lang.Success ? lang.Groups[1].Value : null, AnchorRegex().Count(html));
    }

    [GeneratedRegex(@"<html\b[^>]*?\blang\s*=\s*[""']?([A-Za-z0-9\-_]+)", RegexOptions.IgnoreCase)]
    private static partial Regex HtmlLangRegex();

    [GeneratedRegex(@"<a\s[^>]*?href\s*=", RegexOptions.IgnoreCase)]
    private static partial Regex AnchorRegex();
}
