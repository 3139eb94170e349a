namespace Pipeline.Runtime;

/// <summary>
/// Ledger keys shared between services that do not reference each other (the trainer re-announces what the
/// evaluator has not marked). One definition each, so the writer and the readers cannot drift apart.
/// </summary>
public static class LedgerKeys
{
    /// <summary>Set by the evaluator once every task of a checkpoint is scored (or failed); value: the failures.</summary>
    public static string Evaluated(string checkpointUri) => $"evaluated:{checkpointUri}";

    /// <summary>Why a task (its name, or the file it was asked for by) could not be scored on a checkpoint, written by the evaluator.</summary>
    public static string EvaluationFailure(string checkpointUri, string task) => $"eval-failed:{checkpointUri}:{task}";

    /// <summary>A run's crawl summary (pages, shards, skip reasons), written once the whole crawl is finished.</summary>
    /// <summary>A run's lineage (<see cref="RunLineage"/>): the checkpoint its model started from, and how.</summary>
    public static string Lineage(string runName) => $"lineage:{runName}";

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

    /// <summary>A long job's state (LedgerJob: request, state, error) under its kind (<see cref="JobKinds"/>) and name.</summary>
    public static string Job(string kind, string name) => $"{kind}:{name}";

    /// <summary>
    /// A run's training documents that contain evaluation examples (<see cref="Runtime.ExcludedDocuments"/>, JSON):
    /// written by the contamination stage when decontamination removes them, read by the tokenizer, which skips them.
    /// </summary>
    public static string ExcludedDocuments(string runId) => $"excluded-documents:{runId}";

    /// <summary>
    /// A run's documents that semantic dedup removed (<see cref="Runtime.ExcludedDocuments"/>, JSON): read by the
    /// tokenizer, which skips them as it skips decontaminated ones.
    /// </summary>
    public static string SemanticDuplicates(string runId) => $"semantic-duplicates:{runId}";

    /// <summary>What semantic dedup did in a run: clusters, removals per cluster, examples of removed pairs (JSON).</summary>
    public static string SemanticDedup(string runId) => $"semantic-dedup:{runId}";

    /// <summary>An ablation's results (<see cref="AblationSummary"/>, JSON), written by `pipeline ablate` for the dashboard.</summary>
    public static string Ablation(string name) => $"ablation:{name}";

    /// <summary>A run's contamination table: evaluation examples found in its training corpus, per task (JSON).</summary>
    public static string Contamination(string runId) => $"contamination:{runId}";

    /// <summary>How far a run's ingestion of one WARC file got (its resume offset and shard count).</summary>
    public static string WarcProgress(string runId, string file) => $"warc:{runId}:{file}";

    /// <summary>The lease of a run's dedup index: one writer at a time across every dedup service.</summary>
    public static string DedupIndexLease(string runId) => $"dedup-index:{runId}";

    /// <summary>A run's shared dedup index (S3): the number of changes so far.</summary>
    public static string DedupIndexGeneration(string runId) => $"dedup-index:{runId}:generation";

    /// <summary>Change <paramref name="change"/> of a run's shared dedup index: the shard it decided and its object.</summary>
    public static string DedupIndexChange(string runId, long change) => $"dedup-index:{runId}:change:{change}";

    /// <summary>The change count of a run's latest dedup index snapshot.</summary>
    public static string DedupIndexSnapshot(string runId) => $"dedup-index:{runId}:snapshot";

    /// <summary>What the WARC files named in a run's crawl request gave (records, pages, shards).</summary>
    public static string WarcSummary(string runId) => $"warc-summary:{runId}";
}

/// <summary>The kinds of long job, each the prefix of its jobs' ledger keys.</summary>
public static class JobKinds
{
    /// <summary>A run's crawl, or one part of it ("run/p1").</summary>
    public const string Crawl = "crawl";

    /// <summary>A training run, by run name.</summary>
    public const string Training = "training";

    /// <summary>An alignment job, by output run name.</summary>
    public const string Alignment = "alignment";

    /// <summary>A release of a checkpoint (a quantized copy or a GGUF file), by checkpoint URI and target.</summary>
    public const string Release = "release";

    public static readonly IReadOnlyList<string> All = [Crawl, Training, Alignment, Release];
}
