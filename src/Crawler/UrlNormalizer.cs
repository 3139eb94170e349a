using System.Text;

namespace Pipeline.Crawler;

/// <summary>
/// Canonical form of a URL for frontier dedup: lower-case scheme and host, no default port, no fragment, normalized
/// percent-encoding (via <see cref="Uri"/>), tracking parameters stripped and the rest sorted.
/// </summary>
public sealed class UrlNormalizer(IEnumerable<string> strippedParameters)
{
    private readonly HashSet<string> _stripped = new(strippedParameters, StringComparer.OrdinalIgnoreCase);

    public string? Normalize(string url, Uri? baseUri = null)
    {
        url = url.Trim();
        Uri? uri;
        if (baseUri is null ? !Uri.TryCreate(url, UriKind.Absolute, out uri) : !Uri.TryCreate(baseUri, url, out uri))
            return null;
        return Normalize(uri);
    }

    public string? Normalize(Uri uri)
    {
        if (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) return null;
        var builder = new StringBuilder();
        // IdnHost drops an IPv6 literal's brackets, which the URL needs (http://[::1]:8080/); Host keeps them.
        var host = uri.HostNameType == UriHostNameType.IPv6 ? uri.Host : uri.IdnHost;
        builder.Append(uri.Scheme).Append("://").Append(host.ToLowerInvariant());
        if (!uri.IsDefaultPort) builder.Append(':').Append(uri.Port);
        var path = uri.AbsolutePath;
        builder.Append(path.Length == 0 ? "/" : path);
        var query = uri.Query.TrimStart('?');
        if (query.Length > 0)
        {
            var kept = query.Split('&', StringSplitOptions.RemoveEmptyEntries)
                .Where(p => !_stripped.Contains(p.Split('=')[0]))
                .Order(StringComparer.Ordinal)
                .ToList();
            if (kept.Count > 0) builder.Append('?').Append(string.Join('&', kept));
        }
        var normalized = builder.ToString();
        // Every URL handed on must parse again (frontier, partitions, scope checks): an odd host that Uri accepted in
        // one form and refuses in the other is dropped here, never thrown later on the page that linked it.
        return Uri.TryCreate(normalized, UriKind.Absolute, out _) ? normalized : null;
    }
}
