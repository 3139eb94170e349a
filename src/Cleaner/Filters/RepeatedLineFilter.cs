namespace Pipeline.Cleaner.Filters;

/// <summary>
/// Removes the second and later copies of a line within a document, and drops the document when the copies were more
/// than <see cref="MaxRemovedFraction"/> of its characters. Reference documentation restates by its structure: javadoc
/// and Doxygen repeat each member's first sentence in the summary table, Sphinx's autosummary does the same, gtk-doc
/// repeats a signature in its index and its detail. Gopher's duplicate-line rules reject such a page whole; this step
/// keeps the page and drops what a model would read twice, while a page that is mostly copies (a spam block repeated,
/// boilerplate printed twice) is still rejected. Lines shorter than <see cref="MinChars"/> are labels ("Parameters",
/// "Returns:") and are kept where they are.
/// </summary>
public sealed class RepeatedLineFilter : ILineFilter
{
    public string Name => "repeated_lines";
    public int MinChars { get; init; } = 30;
    public double MaxRemovedFraction { get; init; } = 0.5;

    public string? KeepLines(Document d)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var kept = new List<(int, string)>(d.Lines.Length);
        long removed = 0, total = 0;
        for (var i = 0; i < d.Lines.Length; i++)
        {
            var line = d.Lines[i];
            total += line.Length;
            if (line.Length >= MinChars && !seen.Add(line)) removed += line.Length;
            else kept.Add((i, line));
        }
        if (total == 0 || (double)removed / total > MaxRemovedFraction) return null;
        return removed == 0 ? d.Text : d.Join(kept);
    }
}
