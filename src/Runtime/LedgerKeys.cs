namespace Pipeline.Runtime;

/// <summary>
/// Ledger keys shared between services that do not reference each other (the trainer re-announces what the
/// evaluator has not marked). One definition each, so the writer and the readers cannot drift apart.
/// </summary>
public static class LedgerKeys
{
    /// <summary>Set by the evaluator once every task of a checkpoint is scored (or failed); value: the failures.</summary>
    public static string Evaluated(string checkpointUri) => $"evaluated:{checkpointUri}";

    /// <summary>A run's crawl summary (pages, shards, skip reasons), written once the whole crawl is finished.</summary>
    public static string CrawlSummary(string runId) => $"crawl-summary:{runId}";

    /// <summary>
    /// A running crawl's live counters (pages fetched and failed, URLs queued, shards), rewritten every few seconds by
    /// the crawl job (per part of a split crawl: the part's suffix), for the run view and the dashboard.
    /// </summary>
    public static string CrawlProgress(string runId, int? part = null) => part is { } p ? $"crawl-progress:{runId}:p{p}" : $"crawl-progress:{runId}";

    /// <summary>The summary of part <paramref name="part"/> of a crawl split by host.</summary>
    public static string CrawlPartSummary(string runId, int part) => $"crawl-summary:{runId}:p{part}";

    /// <summary>A run's tokenizer: a JSON array of its folder's URI and its hash, written by the tokenizer service.</summary>
    public static string Tokenizer(string runId) => $"tokenizer:{runId}";
}
