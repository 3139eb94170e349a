using System.ComponentModel.DataAnnotations;
namespace Pipeline.Cleaner;

/// <summary>The Cleaner configuration section (Pipeline:Cleaner). Filter thresholds live on the filter classes.</summary>
public sealed class CleanerOptions
{
    public const string Section = "Pipeline:Cleaner";

    public bool NormalizeNfkc { get; set; } = true;
    public List<string> Languages { get; set; } = ["ja", "en"];
    [Range(0.0, 1.0)]
    public double MinLanguageScore { get; set; } = 0.65;
    public bool MaskPii { get; set; } = true;
    public bool ExactDedup { get; set; } = true;
    /// <summary>Keep up to this many rejected documents per rule in a sample shard for inspection (0 = none).</summary>
    [Range(0, int.MaxValue)]
    public int RejectedSamplesPerRule { get; set; } = 5;
    public string NgWordsFile { get; set; } = "";
    /// <summary>
    /// Per-filter settings by filter name, e.g. Pipeline:Cleaner:Filters:gopher_quality:MinWords=30, or
    /// Pipeline:Cleaner:Filters:c4:Enabled=false to drop a rule. Names and defaults: docs/cleaner.md.
    /// </summary>
    public Dictionary<string, Dictionary<string, string>> Filters { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}
