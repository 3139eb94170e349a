using System.Text.RegularExpressions;

namespace Pipeline.Cleaner.Filters;

/// <summary>
/// RefinedWeb line-wise corrections: remove counters ("12 likes"), navigation words, "read more", social buttons and
/// cookie notices; drop the document when more than <see cref="MaxRemovedFraction"/> of its characters went.
/// </summary>
public sealed partial class RefinedWebLineFilter : ILineFilter
{
    public string Name => "line_corrections";
    public double MaxRemovedFraction { get; init; } = 0.05;

    public string? KeepLines(Document d)
    {
        var kept = new List<(int, string)>();
        long removed = 0, total = 0;
        for (var i = 0; i < d.Lines.Length; i++)
        {
            var line = d.Lines[i];
            total += line.Length;
            if (BoilerplateRegex().IsMatch(line) || CounterRegex().IsMatch(line)) removed += line.Length;
            else kept.Add((i, line));
        }
        if (total == 0 || (double)removed / total > MaxRemovedFraction) return null;
        return d.Join(kept);
    }

    [GeneratedRegex(@"^(read more|続きを読む|もっと見る|share|シェア|tweet|ツイート|like|いいね|home|ホーム|next|prev|previous|back to top|ページトップへ|menu|メニュー|login|log in|sign in|ログイン|subscribe)\b.{0,20}$|cookie|クッキー", RegexOptions.IgnoreCase)]
    private static partial Regex BoilerplateRegex();

    [GeneratedRegex(@"^\d+\s*(likes?|comments?|shares?|views?|件|回|いいね)$", RegexOptions.IgnoreCase)]
    private static partial Regex CounterRegex();
}
