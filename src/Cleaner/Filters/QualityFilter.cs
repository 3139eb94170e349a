using Pipeline.Cleaner.Quality;

namespace Pipeline.Cleaner.Filters;

/// <summary>
/// Keeps documents a trained quality classifier (<see cref="QualityClassifier"/>, `pipeline quality train`) scores at
/// or above <see cref="Threshold"/>: DCLM's filter, whose classifier was trained on a reference corpus against a sample
/// of the crawl. Kept documents carry their score into the clean shard (QualityScore), so that an ablation can sweep
/// thresholds over one cleaning run: with Threshold 0 every document is scored and none removed.
/// </summary>
public sealed class QualityFilter : ICleanerStep, IPreparedStep
{
    public string Name => "quality";

    /// <summary>The model's folder (written by `pipeline quality train`).</summary>
    public string Model { get; init; } = "";

    /// <summary>The lowest score kept: the probability that the document is of the classifier's positive kind.</summary>
    public double Threshold { get; init; } = 0.5;

    /// <summary>
    /// Instead of <see cref="Threshold"/>: keep this fraction of the crawl (DCLM: 0.1), the threshold read from the
    /// scores of the crawl sample the classifier was trained against. 0: use <see cref="Threshold"/>.
    /// </summary>
    public double KeepTopFraction { get; init; }

    private QualityClassifier? _classifier;
    private double _threshold;

    public void Prepare(string where)
    {
        if (Model.Length == 0) throw new ArgumentException($"{where}: the quality step needs settings:Model, a folder written by `pipeline quality train`");
        if (Threshold is < 0 or > 1) throw new ArgumentException($"{where}: Threshold {Threshold} is not a probability (0 to 1)");
        if (KeepTopFraction is < 0 or > 1) throw new ArgumentException($"{where}: KeepTopFraction {KeepTopFraction} is not a fraction (0 to 1)");
        try
        {
            _classifier = QualityClassifier.Load(Model);
            _threshold = KeepTopFraction > 0 ? _classifier.Info.ThresholdForTop(KeepTopFraction) : Threshold;
        }
        catch (Exception e) when (e is FileNotFoundException or InvalidDataException)
        {
            throw new ArgumentException($"{where}: {e.Message}", e);
        }
    }

    /// <summary>Rejects a document scored under the threshold, else keeps it with its score (the clean shard's QualityScore column).</summary>
    public StepResult Apply(Document document)
    {
        var classifier = _classifier ?? throw new InvalidOperationException("the quality step was not prepared");
        var score = classifier.Score([document.Text])[0];
        return score < _threshold ? StepResult.Reject("score under threshold") : StepResult.Keep(document.WithQualityScore(score));
    }
}
