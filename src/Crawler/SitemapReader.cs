using System.Xml.Linq;

namespace Pipeline.Crawler;

/// <summary>Reads sitemap.xml and sitemap indexes (sitemaps.org protocol); relative locations resolve against the sitemap URL.</summary>
public static class SitemapReader
{
    public sealed record Sitemap(IReadOnlyList<Uri> Pages, IReadOnlyList<Uri> ChildSitemaps);

    public static Sitemap Parse(string xml, Uri sitemapUri)
    {
        XDocument document;
        try
        {
            document = XDocument.Parse(xml);
        }
        catch (System.Xml.XmlException)
        {
            return new Sitemap([], []);
        }
        var root = document.Root;
        if (root is null) return new Sitemap([], []);
        var locations = root.Elements().Select(e => e.Elements().FirstOrDefault(c => c.Name.LocalName == "loc")?.Value.Trim())
            .Where(l => !string.IsNullOrEmpty(l))
            .Select(l => Uri.TryCreate(sitemapUri, l, out var u) ? u : null)
            .OfType<Uri>()
            .ToList();
        return root.Name.LocalName == "sitemapindex" ? new Sitemap([], locations) : new Sitemap(locations, []);
    }
}
