using System.Globalization;
using System.Net;
using System.Text;

namespace Pipeline.Dashboard;

/// <summary>
/// A line chart as inline SVG, drawn on the server. Written by hand because the page has no script bundle to carry a
/// chart library: a few polylines, axes with min/max labels and a legend beside the plot area.
/// </summary>
public static class SvgChart
{
    private static readonly string[] Colors = ["#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e"];

    public static string Lines(string title, IReadOnlyList<(string Label, IReadOnlyList<(double X, double Y)> Points)> series, string xLabel = "step")
    {
        var drawn = series.Where(s => s.Points.Count > 0).ToList();
        var svg = new StringBuilder($"<figure><figcaption>{WebUtility.HtmlEncode(title)}</figcaption>");
        if (drawn.Count == 0) return svg.Append("<p class=\"muted\">no points yet</p></figure>").ToString();
        const double width = 540, height = 200, left = 48, right = 170, top = 8, bottom = 24;
        var points = drawn.SelectMany(s => s.Points).Where(p => double.IsFinite(p.Y)).ToList();
        if (points.Count == 0) return svg.Append("<p class=\"muted\">no finite values</p></figure>").ToString();
        double minX = points.Min(p => p.X), maxX = points.Max(p => p.X), minY = points.Min(p => p.Y), maxY = points.Max(p => p.Y);
        if (maxX == minX) maxX = minX + 1;
        if (maxY == minY) (minY, maxY) = (minY - 0.5, maxY + 0.5);
        string X(double x) => (left + (x - minX) / (maxX - minX) * (width - left - right)).ToString("F1", CultureInfo.InvariantCulture);
        string Y(double y) => (top + (1 - (y - minY) / (maxY - minY)) * (height - top - bottom)).ToString("F1", CultureInfo.InvariantCulture);
        svg.Append(CultureInfo.InvariantCulture, $"<svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{WebUtility.HtmlEncode(title)}\">");
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" y1=\"{height - bottom}\" x2=\"{width - right}\" y2=\"{height - bottom}\" stroke=\"#999\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{height - bottom}\" stroke=\"#999\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 4}\" y=\"{top + 10}\" text-anchor=\"end\">{Short(maxY)}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 4}\" y=\"{height - bottom}\" text-anchor=\"end\">{Short(minY)}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left}\" y=\"{height - 6}\">{Short(minX)}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{width - right}\" y=\"{height - 6}\" text-anchor=\"end\">{Short(maxX)} {WebUtility.HtmlEncode(xLabel)}</text>");
        for (var i = 0; i < drawn.Count; i++)
        {
            var color = Colors[i % Colors.Length];
            var line = string.Join(' ', drawn[i].Points.Where(p => double.IsFinite(p.Y)).OrderBy(p => p.X).Select(p => $"{X(p.X)},{Y(p.Y)}"));
            svg.Append($"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.6\" points=\"{line}\"/>");
            foreach (var p in drawn[i].Points.Where(p => double.IsFinite(p.Y)))
                svg.Append($"<circle cx=\"{X(p.X)}\" cy=\"{Y(p.Y)}\" r=\"2\" fill=\"{color}\"><title>{WebUtility.HtmlEncode(drawn[i].Label)}: {Short(p.X)}, {Short(p.Y)}</title></circle>");
            // The legend sits right of the plot area, so it never covers a point.
            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{width - right + 10}\" y=\"{top + i * 16}\" width=\"10\" height=\"10\" fill=\"{color}\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{width - right + 24}\" y=\"{top + i * 16 + 9}\">{WebUtility.HtmlEncode(drawn[i].Label)}</text>");
        }
        return svg.Append("</svg></figure>").ToString();
    }

    private static string Short(double value) =>
        Math.Abs(value) >= 1000 || value == Math.Round(value) ? value.ToString("#,0", CultureInfo.InvariantCulture) : value.ToString("G4", CultureInfo.InvariantCulture);
}
