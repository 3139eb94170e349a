namespace Pipeline.Contracts.V1;

/// <summary>The crawler wrote a raw-page shard (schema: docs/schemas.md#raw-pages).</summary>
public sealed record RawShardCreated(ShardRef Shard);

/// <summary>The cleaner wrote a clean-document shard.</summary>
public sealed record CleanShardCreated(ShardRef Shard);

/// <summary>The deduplicator wrote a shard of kept documents.</summary>
public sealed record DedupShardCreated(ShardRef Shard);

/// <summary>Embed a kept-document shard for semantic dedup (sent by the run for each of its dedup shards when it has semantic dedup).</summary>
public sealed record EmbedShardRequested(ShardRef Shard);

public sealed record EmbeddingShardCreated(ShardRef Shard);

/// <summary>The tokenizer wrote a token shard with the given tokenizer.</summary>
public sealed record TokenShardCreated(ShardRef Shard, string TokenizerHash, long TrainTokens, long ValidationTokens);

/// <summary>
/// A stage finished one input shard and recorded it in the ledger (<see cref="Outputs"/> shards written, possibly
/// none). Published after the record, so a coordinator that re-reads the ledger on it sees the input done.
/// </summary>
public sealed record InputProcessed(string RunId, string Stage, string InputShardId, int Outputs);

/// <summary>A stage has finished every input it was given for a run (used to trigger the next phase).</summary>
public sealed record StageCompleted(string RunId, string Stage, int Shards);

/// <summary>
/// Train a BPE vocabulary on the deduplicated shards of a run (the tokenizer reads which they are from the ledger; a
/// sender of version 1 also listed their URIs, which JSON readers of this version ignore).
/// </summary>
public sealed record TrainTokenizer(string RunId, int VocabSize);

/// <summary>A vocabulary was trained; <see cref="Uri"/> is its folder relative to the storage root.</summary>
public sealed record TokenizerTrained(string RunId, string Uri, string TokenizerHash, int VocabSize);

/// <summary>Start (or resume) a training run. <see cref="ConfigJson"/> is a serialized trainer config.</summary>
public sealed record StartTraining(string RunId, string RunName, string ManifestUri, string ConfigJson);

/// <summary>Stop a training run at the next step boundary, with a checkpoint.</summary>
public sealed record CancelTraining(string RunName);

/// <summary>Progress of a training run.</summary>
public sealed record TrainingProgress(string RunName, long Step, long MaxSteps, double Loss, double TokensPerSecond);

/// <summary>A training run ended (completed, cancelled or failed).</summary>
public sealed record TrainingFinished(string RunName, string State, long Step, string? Error);

/// <summary>A checkpoint is complete on disk.</summary>
public sealed record CheckpointSaved(
    string RunId,
    string RunName,
    long Step,
    long TokensSeen,
    string Uri,
    string Sha256,
    string TokenizerHash,
    double? ValidationLoss,
    string? BaseCheckpoint = null,
    string? Method = null,
    string? DataHash = null,
    string? RewardModel = null);

/// <summary>
/// Evaluate a set of checkpoints on a set of tasks (empty lists mean all). <see cref="Tasks"/> names task files the
/// evaluator is configured with (by path or file name) or URIs relative to the storage root, never other host paths.
/// </summary>
public sealed record EvaluateRequested(
    IReadOnlyList<string> RunNames,
    IReadOnlyList<string> CheckpointUris,
    IReadOnlyList<string> Tasks,
    bool LatestOnly,
    bool Force);

/// <summary>One checkpoint was scored on one task.</summary>
public sealed record EvaluationCompleted(
    string RunName,
    long Step,
    string CheckpointUri,
    string Task,
    string TaskVersion,
    IReadOnlyDictionary<string, double> Metrics,
    string? Error);

/// <summary>
/// Every task of a checkpoint has been scored or has failed (<see cref="FailedTasks"/>), and the ledger says so:
/// no more scores are coming for it from its announcement.
/// </summary>
public sealed record CheckpointEvaluated(string RunId, string RunName, string CheckpointUri, IReadOnlyList<string> FailedTasks);

/// <summary>Fine-tune a base checkpoint (sft or dpo, optionally with LoRA).</summary>
public sealed record AlignmentRequested(string RunName, string BaseCheckpointUri, string Method, string DataUri, string ConfigJson, string? RunId = null);

/// <summary>
/// Release a checkpoint for use outside training (the trainer service's release job). <see cref="Target"/> is
/// "int8" or "int4" (optionally "/&lt;group size&gt;"): a quantized checkpoint under checkpoints/&lt;run&gt;-int8/, announced
/// with <see cref="CheckpointSaved"/> so the evaluator scores it; or "gguf:f32|f16|q8_0|q4_0": a llama.cpp file under
/// releases/&lt;run&gt;/, announced with <see cref="ReleaseWritten"/>.
/// </summary>
public sealed record ReleaseRequested(string CheckpointUri, string Target, string? RunId = null);

/// <summary>A released file (a GGUF) is complete in the store at <see cref="Uri"/>, with its checksum and size.</summary>
public sealed record ReleaseWritten(string RunId, string CheckpointUri, string Target, string Uri, string Sha256, long Bytes);

/// <summary>
/// Crawl from seeds (serve mode; <c>pipeline crawl</c> runs the same crawl without a bus). <see cref="WarcFiles"/> are
/// URIs relative to the storage root, like shard URIs, never host paths. A crawl split by host into
/// <see cref="Partitions"/> parts is one message per part, each a job of its own that any crawler service may take;
/// every part gets every seed (they define the crawl's scope) and crawls only its own hosts.
/// </summary>
public sealed record CrawlRequested(string RunId, IReadOnlyList<string> Seeds, int MaxPages, IReadOnlyList<string>? WarcFiles = null,
    int Partition = 0, int Partitions = 1);

/// <summary>
/// Run a barrier stage of a run (<see cref="Stage"/>): once, over every shard its input stage wrote
/// (<see cref="InputStage"/>), with its settings as JSON. Every service that hosts a barrier stage hears it; the one
/// hosting the stage named takes it. It answers with <see cref="StageCompleted"/> once the ledger has its result.
/// </summary>
public sealed record RunStageRequested(string RunId, string Stage, string InputStage, string SettingsJson);
