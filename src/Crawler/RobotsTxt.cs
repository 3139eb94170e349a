using System.Text;

namespace Pipeline.Crawler;

/// <summary>
/// robots.txt per RFC 9309: groups by user-agent (the most specific matching group, else '*'), Allow/Disallow with
/// '*' and '$', longest match wins and Allow wins a tie; plus the common Crawl-delay and Sitemap extensions.
/// Hand-written: no maintained .NET package implements RFC 9309.
/// </summary>
public sealed class RobotsTxt
{
    private readonly List<(bool Allow, string Pattern)> _rules;

    private RobotsTxt(List<(bool, string)> rules, TimeSpan? crawlDelay, List<string> sitemaps)
    {
        _rules = rules;
        CrawlDelay = crawlDelay;
        Sitemaps = sitemaps;
    }

    public static RobotsTxt AllowAll { get; } = new([], null, []);

    public static RobotsTxt DisallowAll { get; } = new([(false, "/")], null, []);

    public TimeSpan? CrawlDelay { get; }

    public IReadOnlyList<string> Sitemaps { get; }

    public static RobotsTxt Parse(string text, string userAgent)
    {
        var product = userAgent.Split('/', ' ')[0].ToLowerInvariant();
        var groups = new List<(List<string> Agents, List<(bool, string)> Rules, TimeSpan? Delay)>();
        var sitemaps = new List<string>();
        List<string>? agents = null;
        List<(bool, string)>? rules = null;
        TimeSpan? delay = null;
        var lastWasAgent = false;

        foreach (var rawLine in text.Split('\n'))
        {
            var line = rawLine;
            var hash = line.IndexOf('#');
            if (hash >= 0) line = line[..hash];
            var colon = line.IndexOf(':');
            if (colon < 0) continue;
            var key = line[..colon].Trim().ToLowerInvariant();
            var value = line[(colon + 1)..].Trim();
            switch (key)
            {
                case "user-agent":
                    if (!lastWasAgent)
                    {
                        agents = [];
                        rules = [];
                        delay = null;
                        groups.Add((agents, rules, null));
                    }
                    agents!.Add(value.ToLowerInvariant());
                    lastWasAgent = true;
                    break;
                case "allow" or "disallow" when rules is not null:
                    if (value.Length > 0) rules.Add((key == "allow", NormalizePattern(value)));
                    lastWasAgent = false;
                    break;
                case "crawl-delay" when agents is not null:
                    if (double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds >= 0)
                    {
                        delay = TimeSpan.FromSeconds(Math.Min(seconds, 60));
                        groups[^1] = (groups[^1].Agents, groups[^1].Rules, delay);
                    }
                    lastWasAgent = false;
                    break;
                case "sitemap":
                    if (value.Length > 0) sitemaps.Add(value);
                    break;
                default:
                    lastWasAgent = false;
                    break;
            }
        }

        var matching = groups.Where(g => g.Agents.Any(a => a != "*" && product.StartsWith(a, StringComparison.Ordinal))).ToList();
        if (matching.Count == 0) matching = groups.Where(g => g.Agents.Contains("*")).ToList();
        var merged = matching.SelectMany(g => g.Rules).ToList();
        var mergedDelay = matching.Select(g => g.Delay).FirstOrDefault(d => d is not null);
        return new RobotsTxt(merged, mergedDelay, sitemaps);
    }

    /// <summary>Whether the path-and-query of a URL may be fetched.</summary>
    public bool IsAllowed(string pathAndQuery)
    {
        if (pathAndQuery == "/robots.txt") return true;
        var path = NormalizePattern(pathAndQuery);
        var best = -1;
        var allowed = true;
        foreach (var (allow, pattern) in _rules)
        {
            if (!Matches(pattern, path)) continue;
            var length = pattern.Length;
            if (length > best || (length == best && allow))
            {
                best = length;
                allowed = allow;
            }
        }
        return allowed;
    }

    // Percent-encode non-ASCII so patterns and paths compare in one form (RFC 9309 section 2.2.2).
    private static string NormalizePattern(string value)
    {
        if (value.All(c => c < 128)) return value;
        var builder = new StringBuilder();
        foreach (var b in Encoding.UTF8.GetBytes(value))
            builder.Append(b < 128 ? ((char)b).ToString() : $"%{b:X2}");
        return builder.ToString();
    }

    private static bool Matches(string pattern, string path)
    {
        var anchored = pattern.EndsWith('$');
        if (anchored) pattern = pattern[..^1];
        return Match(pattern, 0, path, 0, anchored);
    }

    private static bool Match(string pattern, int pi, string path, int si, bool anchored)
    {
        while (pi < pattern.Length)
        {
            if (pattern[pi] == '*')
            {
                while (pi < pattern.Length && pattern[pi] == '*') pi++;
                if (pi == pattern.Length) return true;
                for (var k = si; k <= path.Length; k++)
                    if (Match(pattern, pi, path, k, anchored)) return true;
                return false;
            }
            if (si >= path.Length || pattern[pi] != path[si]) return false;
            pi++;
            si++;
        }
        return !anchored || si == path.Length;
    }
}
