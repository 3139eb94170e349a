using AngleSharp.Html.Parser;

namespace Pipeline.Crawler;

/// <summary>Outgoing links, canonical URL, language hint and meta refresh of an HTML page, via AngleSharp.</summary>
public static class LinkExtractor
{
    private static readonly HtmlParser Parser = new(new HtmlParserOptions { IsScripting = false });

    public sealed record PageLinks(IReadOnlyList<Uri> Links, Uri? Canonical, string? Language);

    public static PageLinks Extract(string html, Uri pageUri)
    {
        using var document = Parser.ParseDocument(html);
        var baseUri = pageUri;
        if (document.QuerySelector("base[href]")?.GetAttribute("href") is { } baseHref && Uri.TryCreate(pageUri, baseHref, out var b))
            baseUri = b;
        var links = new List<Uri>();
        foreach (var anchor in document.QuerySelectorAll("a[href]"))
        {
            var href = anchor.GetAttribute("href")!;
            if (href.StartsWith("javascript:", StringComparison.OrdinalIgnoreCase) || href.StartsWith("mailto:", StringComparison.OrdinalIgnoreCase)) continue;
            if ((anchor.GetAttribute("rel") ?? "").Contains("nofollow", StringComparison.OrdinalIgnoreCase)) continue;
            if (Uri.TryCreate(baseUri, href, out var uri)) links.Add(uri);
        }
        foreach (var meta in document.QuerySelectorAll("meta[http-equiv]"))
        {
            if (!string.Equals(meta.GetAttribute("http-equiv"), "refresh", StringComparison.OrdinalIgnoreCase)) continue;
            var content = meta.GetAttribute("content") ?? "";
            var at = content.IndexOf("url=", StringComparison.OrdinalIgnoreCase);
            if (at >= 0 && Uri.TryCreate(baseUri, content[(at + 4)..].Trim(' ', '\'', '"'), out var refresh)) links.Add(refresh);
        }
        Uri? canonical = null;
        if (document.QuerySelector("link[rel=canonical][href]")?.GetAttribute("href") is { } canon && Uri.TryCreate(baseUri, canon, out var c))
        {
            canonical = c;
            links.Add(c);
        }
        var language = document.DocumentElement?.GetAttribute("lang");
        return new PageLinks(links, canonical, string.IsNullOrWhiteSpace(language) ? null : language.Trim());
    }
}
