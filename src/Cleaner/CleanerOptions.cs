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
    /// The cleaning recipe: a shipped recipe's name (default, fineweb, refinedweb, gopher, c4, swallow, llm-jp, strict)
    /// or the path of a recipe .json file. "default" is fineweb for English and swallow for Japanese.
    /// </summary>
    public string Recipe { get; set; } = Cleaner.Recipe.Default;
    /// <summary>
    /// Per-filter settings by filter name, e.g. Pipeline:Cleaner:Filters:gopher_quality:MinWords=30, or
    /// Pipeline:Cleaner:Filters:c4:Enabled=false to drop a rule; they apply to that filter's steps in the recipe. Names and defaults: docs/cleaner.md.
    /// </summary>
    public Dictionary<string, Dictionary<string, string>> Filters { get; set; } = new(StringComparer.OrdinalIgnoreCase);
}
