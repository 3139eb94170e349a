namespace Pipeline.Dedup;

/// <summary>
/// The LSH S-curve and the choice of bands x rows for a Jaccard threshold: with b bands of r rows, two documents of
/// Jaccard similarity s share at least one band with probability 1 - (1 - s^r)^b. The best (b, r) for a threshold
/// minimizes the area of false positives below it plus false negatives above it (as datasketch does).
/// </summary>
public static class LshParameters
{
    public static double Probability(double s, int bands, int rows) => 1 - Math.Pow(1 - Math.Pow(s, rows), bands);

    public static (double FalsePositive, double FalseNegative) Errors(double threshold, int bands, int rows)
    {
        const int steps = 200;
        double fp = 0, fn = 0;
        for (var i = 0; i < steps; i++)
        {
            var s = (i + 0.5) / steps;
            var p = Probability(s, bands, rows);
            if (s < threshold) fp += p / steps;
            else fn += (1 - p) / steps;
        }
        return (fp, fn);
    }

    /// <summary>The (bands, rows) with bands x rows at most <paramref name="permutations"/> that minimizes false positives plus false negatives.</summary>
    public static (int Bands, int Rows) Optimal(double threshold, int permutations)
    {
        var best = (Bands: 1, Rows: 1, Error: double.MaxValue);
        for (var bands = 1; bands <= permutations; bands++)
        {
            for (var rows = 1; bands * rows <= permutations; rows++)
            {
                var (fp, fn) = Errors(threshold, bands, rows);
                if (fp + fn < best.Error) best = (bands, rows, fp + fn);
            }
        }
        return (best.Bands, best.Rows);
    }
}
