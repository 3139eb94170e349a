using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Text;

namespace Pipeline.Cleaner.Quality;

/// <summary>
/// A trained quality classifier, as DCLM (Li et al. 2024) and GPT-3 used one: positives from a reference corpus,
/// negatives from the crawl, and a linear model over hashed n-grams. Built on ML.NET rather than by hand: its text
/// featurizer (word uni- and bigrams, and character trigrams, which is what Japanese needs, since it has no spaces
/// between words) and SDCA logistic regression. Scores are the probability of the positive class.
/// </summary>
public sealed class QualityClassifier
{
    /// <summary>Characters of a document the classifier reads: enough to judge a page, bounded for very large ones.</summary>
    public const int MaxChars = 20_000;

    private const string ModelFile = "model.zip";
    private const string InfoFile = "quality.json";

    private sealed class Example
    {
        public string Text { get; set; } = "";
        public bool Label { get; set; }
    }

    private readonly MLContext _ml;
    private readonly ITransformer _model;

    private QualityClassifier(MLContext ml, ITransformer model, QualityModelInfo info)
    {
        _ml = ml;
        _model = model;
        Info = info;
    }

    /// <summary>What the model was trained on and how it did on its held-out split.</summary>
    public QualityModelInfo Info { get; }

    /// <summary>
    /// Trains on positives and negatives; <paramref name="holdout"/> of each (every n-th, so the split is the same on
    /// every run) is kept out of training and scored for the ROC AUC in <see cref="Info"/>.
    /// </summary>
    public static QualityClassifier Train(IReadOnlyList<string> positives, IReadOnlyList<string> negatives, double holdout = 0.2, int seed = 1)
    {
        if (positives.Count == 0 || negatives.Count == 0)
            throw new ArgumentException($"a classifier needs examples of both kinds ({positives.Count} positive, {negatives.Count} negative)");
        var every = holdout <= 0 ? int.MaxValue : Math.Max(2, (int)Math.Round(1 / holdout));
        bool Held(int i) => i % every == every - 1;
        var examples = positives.Select((t, i) => (Text: t, Label: true, Held: Held(i)))
            .Concat(negatives.Select((t, i) => (Text: t, Label: false, Held: Held(i)))).ToList();
        var ml = new MLContext(seed);
        var training = ml.Data.LoadFromEnumerable(examples.Where(e => !e.Held).Select(e => new Example { Text = Bound(e.Text), Label = e.Label }));
        var pipeline = ml.Transforms.Text.FeaturizeText("Features", new TextFeaturizingEstimator.Options
            {
                CaseMode = TextNormalizingEstimator.CaseMode.Lower,
                KeepPunctuations = false,
                KeepNumbers = false,
                WordFeatureExtractor = new WordBagEstimator.Options { NgramLength = 2, UseAllLengths = true },
                CharFeatureExtractor = new WordBagEstimator.Options { NgramLength = 3, UseAllLengths = false },
                Norm = TextFeaturizingEstimator.NormFunction.L2,
            }, nameof(Example.Text))
            .Append(ml.BinaryClassification.Trainers.SdcaLogisticRegression(nameof(Example.Label), "Features"));
        var model = pipeline.Fit(training);
        var held = examples.Where(e => e.Held).ToList();
        double? auc = null;
        if (held.Any(e => e.Label) && held.Any(e => !e.Label))
        {
            var test = model.Transform(ml.Data.LoadFromEnumerable(held.Select(e => new Example { Text = Bound(e.Text), Label = e.Label })));
            auc = ml.BinaryClassification.Evaluate(test, nameof(Example.Label)).AreaUnderRocCurve;
        }
        var classifier = new QualityClassifier(ml, model, new QualityModelInfo(positives.Count, negatives.Count, held.Count(e => e.Label), held.Count(e => !e.Label), auc));
        // The negatives are a sample of the crawl, so their scores say where "the top fraction of the crawl" begins
        // (DCLM kept its top 10 %): the held-out ones when there are any, which training did not pull down.
        var crawl = held.Any(e => !e.Label) ? held.Where(e => !e.Label).Select(e => e.Text).ToList() : negatives.ToList();
        var scores = classifier.Score(crawl).Select(x => (double)x).Order().ToArray();
        var quantiles = Enumerable.Range(0, 101).Select(p => Math.Round(scores[Math.Min(scores.Length - 1, (int)Math.Floor(p / 100.0 * scores.Length))], 6)).ToArray();
        return new QualityClassifier(ml, model, classifier.Info with { CrawlScorePercentiles = quantiles });
    }

    /// <summary>The probability that each text is of the positive kind.</summary>
    public float[] Score(IReadOnlyList<string> texts)
    {
        if (texts.Count == 0) return [];
        var scored = _model.Transform(_ml.Data.LoadFromEnumerable(texts.Select(t => new Example { Text = Bound(t) })));
        return scored.GetColumn<float>("Probability").ToArray();
    }

    /// <summary>Writes the model and what it was trained on into <paramref name="folder"/>.</summary>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        var schema = _ml.Data.LoadFromEnumerable(Array.Empty<Example>()).Schema;
        _ml.Model.Save(_model, schema, Path.Combine(folder, ModelFile));
        File.WriteAllText(Path.Combine(folder, InfoFile), JsonSerializer.Serialize(Info, new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Reads a model <see cref="Save"/> wrote.</summary>
    public static QualityClassifier Load(string folder)
    {
        var path = Path.Combine(folder, ModelFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"quality model '{folder}': no {ModelFile} in it (write one with `pipeline quality train`)", path);
        var ml = new MLContext(1);
        ITransformer model;
        try
        {
            model = ml.Model.Load(path, out _);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or InvalidDataException or ArgumentException)
        {
            throw new InvalidDataException($"quality model '{path}' cannot be read: {e.Message}", e);
        }
        var infoPath = Path.Combine(folder, InfoFile);
        var info = File.Exists(infoPath) ? JsonSerializer.Deserialize<QualityModelInfo>(File.ReadAllText(infoPath))! : new QualityModelInfo(0, 0, 0, 0, null);
        return new QualityClassifier(ml, model, info);
    }

    private static string Bound(string text) => text.Length > MaxChars ? text[..MaxChars] : text;
}

/// <summary>Examples a quality model was trained on and its ROC AUC on the held-out ones (null without both kinds held out).</summary>
/// <param name="CrawlScorePercentiles">The 0th to 100th percentile of the negatives' (the crawl sample's) scores.</param>
public sealed record QualityModelInfo(int Positives, int Negatives, int HeldOutPositives, int HeldOutNegatives, double? HeldOutRocAuc, double[]? CrawlScorePercentiles = null)
{
    /// <summary>The score above which <paramref name="fraction"/> of the crawl lies, by the crawl sample's percentiles.</summary>
    public double ThresholdForTop(double fraction)
    {
        if (CrawlScorePercentiles is not { Length: 101 } percentiles)
            throw new InvalidDataException("the quality model records no crawl score percentiles (train it again with `pipeline quality train`)");
        var at = (1 - fraction) * 100;
        var low = (int)Math.Floor(at);
        return low >= 100 ? percentiles[100] : percentiles[low] + (at - low) * (percentiles[low + 1] - percentiles[low]);
    }

    public bool Equals(QualityModelInfo? other) => other is not null && (Positives, Negatives, HeldOutPositives, HeldOutNegatives, HeldOutRocAuc) ==
        (other.Positives, other.Negatives, other.HeldOutPositives, other.HeldOutNegatives, other.HeldOutRocAuc) &&
        (CrawlScorePercentiles ?? []).SequenceEqual(other.CrawlScorePercentiles ?? []);

    public override int GetHashCode() => HashCode.Combine(Positives, Negatives, HeldOutRocAuc);
}
