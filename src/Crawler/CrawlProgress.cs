namespace Pipeline.Crawler;

/// <summary>Live counters of a crawl, read by the CLI's progress display.</summary>
public sealed class CrawlProgress
{
    private long _fetched;
    private long _failed;
    private long _bytes;

    public long Fetched => Interlocked.Read(ref _fetched);
    public long Failed => Interlocked.Read(ref _failed);
    public long Bytes => Interlocked.Read(ref _bytes);
    public long Queued { get; set; }
    public int Shards { get; set; }

    internal void AddFetched(long bytes)
    {
        Interlocked.Increment(ref _fetched);
        Interlocked.Add(ref _bytes, bytes);
    }

    internal void AddFailed() => Interlocked.Increment(ref _failed);
}

public sealed record CrawlSummary(int Pages, int Shards, IReadOnlyDictionary<string, int> ByState, IReadOnlyDictionary<string, int> ByReason)
{
    /// <summary>Requests retried after a transient failure in this run.</summary>
    public long Retries { get; init; }
    /// <summary>Failed URLs given another attempt at the start of this run (MaxAttempts not reached).</summary>
    public int Requeued { get; init; }

    /// <summary>The summary of a crawl split into parts: the parts' counts added up.</summary>
    public static CrawlSummary Merge(IReadOnlyList<CrawlSummary> parts)
    {
        static Dictionary<string, int> Sum(IEnumerable<IReadOnlyDictionary<string, int>> maps) =>
            maps.SelectMany(m => m).GroupBy(kv => kv.Key).ToDictionary(g => g.Key, g => g.Sum(kv => kv.Value));
        return new CrawlSummary(parts.Sum(p => p.Pages), parts.Sum(p => p.Shards), Sum(parts.Select(p => p.ByState)), Sum(parts.Select(p => p.ByReason)))
        {
            Retries = parts.Sum(p => p.Retries),
            Requeued = parts.Sum(p => p.Requeued),
        };
    }
}

/// <summary>A crawl's live counters as the ledger keeps them (<see cref="Runtime.LedgerKeys.CrawlProgress"/>).</summary>
public sealed record CrawlCounters(long Fetched, long Failed, long Queued, int Shards);
