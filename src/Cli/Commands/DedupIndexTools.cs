using Pipeline.Cleaner;
using Pipeline.Storage;
using Spectre.Console;

using Pipeline.Dedup;
using Pipeline.Contracts.Rows;

namespace Pipeline.Cli.Commands;

/// <summary>`pipeline dedup --stats`: the persisted LSH index and the removed near-duplicates, as tables.</summary>
public static class DedupIndexTools
{
    public static async Task PrintStatsAsync(DedupOptions options, ShardStore store, string runId, CancellationToken ct)
    {
        var (indexed, bytes, removed, clusters) = await LshIndexMaintenance.ReadStatsAsync(options, store, runId, ct);
        AnsiConsole.MarkupLine($"index: {indexed:N0} kept documents, {bytes / 1e6:F1} MB on disk ({(indexed == 0 ? 0 : bytes / indexed):N0} bytes per document)");
        AnsiConsole.MarkupLine($"documents seen: {indexed + removed:N0}, removed as near-duplicates: {removed:N0}");
        var histogram = new Table().AddColumns("cluster size", "clusters");
        histogram.AddRow("1 (no duplicate)", (indexed - clusters.Count).ToString("N0"));
        foreach (var group in clusters.GroupBy(size => size >= 10 ? 10 : size).OrderBy(g => g.Key))
            histogram.AddRow(group.Key == 10 ? "10+" : group.Key.ToString(), group.Count().ToString("N0"));
        AnsiConsole.Write(histogram);

        var (bestBands, bestRows) = LshParameters.Optimal(options.Threshold, options.Bands * options.Rows);
        var curve = new Table().AddColumns("Jaccard", $"P(candidate) {options.Bands}x{options.Rows}", $"P(candidate) {bestBands}x{bestRows} (optimal for {options.Threshold})");
        foreach (var s in new[] { 0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95 })
            curve.AddRow(s.ToString("F2"), LshParameters.Probability(s, options.Bands, options.Rows).ToString("F3"), LshParameters.Probability(s, bestBands, bestRows).ToString("F3"));
        AnsiConsole.Write(curve);
        var (fp, fn) = LshParameters.Errors(options.Threshold, options.Bands, options.Rows);
        AnsiConsole.MarkupLine($"configured {options.Bands}x{options.Rows}: false-positive area {fp:F4}, false-negative area {fn:F4} at threshold {options.Threshold} (candidates are then verified on their signatures: Pipeline:Dedup:Verify={options.Verify})");
    }
}
