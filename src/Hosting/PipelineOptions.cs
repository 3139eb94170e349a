using System.ComponentModel.DataAnnotations;
namespace Pipeline.Hosting;

public enum TransportKind
{
    InMemory,
    RabbitMq,
}

/// <summary>The <c>Pipeline</c> configuration section (pipeline.json, PIPELINE__* environment variables, flags).</summary>
public sealed class PipelineOptions
{
    public const string Section = "Pipeline";

    /// <summary>
    /// The stage sections under Pipeline, each bound (strictly) by its own module; any other child of Pipeline
    /// must be one of this class's properties, so a misspelled section is an error too.
    /// </summary>
    public static readonly IReadOnlyList<string> StageSections = ["Crawler", "Cleaner", "Dedup", "Tokenizer", "Evaluator", "Alignment", "Release"];

    /// <summary>InMemory (one process, the default) or RabbitMq (one process per service).</summary>
    public TransportKind Transport { get; set; } = TransportKind.InMemory;

    /// <summary>Root folder for shards, the run ledger, checkpoints and reports.</summary>
    public string DataRoot { get; set; } = "pipeline-data";

    public RabbitMqOptions RabbitMq { get; set; } = new();

    /// <summary>Where shards go: the data root only (the default), or S3 with the data root as a local cache.</summary>
    public StorageOptions Storage { get; set; } = new();

    /// <summary>Where the run ledger lives: SQLite in the data root unless a PostgreSQL connection string is set.</summary>
    public LedgerOptions Ledger { get; set; } = new();

    /// <summary>Per-stage consumer limits, keyed by stage name (crawler, cleaner, dedup, tokenizer, trainer, evaluator).</summary>
    public Dictionary<string, StageLimits> Stages { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Retry policy for transient failures (a rejected shard is never retried).</summary>
    public RetryOptions Retry { get; set; } = new();

    /// <summary>
    /// A file the service touches every <see cref="HealthInterval"/> while its bus is healthy and deletes when it is
    /// not (container health checks look at its age); none by default.
    /// </summary>
    public string? HealthFile { get; set; }

    public TimeSpan HealthInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>`pipeline serve dashboard`: where it listens and who may use it.</summary>
    public DashboardOptions Dashboard { get; set; } = new();

    /// <summary>Metrics and traces: a Prometheus endpoint and OTLP export, each only when configured.</summary>
    public TelemetryOptions Telemetry { get; set; } = new();

    /// <summary>What `pipeline run` does with training documents that contain evaluation examples.</summary>
    public DecontaminateOptions Decontaminate { get; set; } = new();

    /// <summary>Semantic dedup of the kept documents before tokenization (SemDeDup, D4; docs/dedup.md).</summary>
    public SemanticDedupOptions SemanticDedup { get; set; } = new();

    public StageLimits LimitsFor(string stage) => Stages.TryGetValue(stage, out var limits) ? limits : new StageLimits();
}

public sealed class SemanticDedupOptions
{
    /// <summary>Run the semantic-dedup stage in `pipeline run` (off by default).</summary>
    public bool Enabled { get; set; }
    /// <summary>Remove a document whose cosine similarity to a kept one of its cluster exceeds 1 − Epsilon.</summary>
    [Range(0.0, 2.0)]
    public double Epsilon { get; set; } = new Contracts.SemanticDedupSettings().Epsilon;
    /// <summary>k of k-means (0: one cluster per 200 documents).</summary>
    [Range(0, int.MaxValue)]
    public int Clusters { get; set; }
    /// <summary>D4: the share of each cluster's kept documents nearest its centroid that is pruned as prototypical (0: none).</summary>
    [Range(0.0, 0.99)]
    public double PrototypeFraction { get; set; }
    /// <summary>Embed with this checkpoint of the project's model (a path, or a URI under the data root) instead of hashed n-grams.</summary>
    public string? Checkpoint { get; set; }

    public Contracts.SemanticDedupSettings? ToSettings() => Enabled ? new(Epsilon, Clusters, PrototypeFraction, Checkpoint: Checkpoint) : null;
}

public sealed class DecontaminateOptions
{
    /// <summary>
    /// Drop the training documents in which an evaluation task's examples were found (13-word or 50-character
    /// n-grams, docs/evaluator.md) before tokenization; off by default, when the overlap is only measured and reported.
    /// </summary>
    public bool Remove { get; set; }
}

public enum StorageKind
{
    File,
    S3,
}

public sealed class StorageOptions
{
    /// <summary>File: shards live in the data root. S3: every file written is also put in the bucket, and shards are read from it.</summary>
    public StorageKind Kind { get; set; } = StorageKind.File;

    /// <summary>With S3: how many megabytes of shards the data root keeps as a cache (least recently used go first).</summary>
    [Range(1, long.MaxValue)]
    public long CacheLimitMegabytes { get; set; } = 10_240;

    public Pipeline.Storage.S3StorageOptions S3 { get; set; } = new();

    /// <summary>The shard store these options describe, over <paramref name="dataRoot"/>.</summary>
    public Pipeline.Storage.ShardStore Open(string dataRoot) => Kind == StorageKind.S3
        ? new Pipeline.Storage.ShardStore(dataRoot, new Pipeline.Storage.S3ObjectStore(S3), CacheLimitMegabytes << 20)
        : new Pipeline.Storage.ShardStore(dataRoot);
}

public sealed class LedgerOptions
{
    /// <summary>
    /// A PostgreSQL connection string (Npgsql) for services on several hosts, e.g. from
    /// PIPELINE__LEDGER__CONNECTIONSTRING; none by default, when the ledger is SQLite in the data root. Leave the
    /// password to PGPASSWORD or ~/.pgpass rather than a config file.
    /// </summary>
    public string? ConnectionString { get; set; }
}

public sealed class RabbitMqOptions
{
    public string Host { get; set; } = "localhost";
    public ushort Port { get; set; } = 5672;
    public string VirtualHost { get; set; } = "/";
    /// <summary>No default on purpose: set Pipeline:RabbitMq:Username / PIPELINE__RABBITMQ__USERNAME.</summary>
    public string? Username { get; set; }
    public string? Password { get; set; }
}

public sealed class StageLimits
{
    [Range(1, int.MaxValue)]
    public int ConcurrentMessageLimit { get; set; } = 1;
    [Range(1, int.MaxValue)]
    public int PrefetchCount { get; set; } = 4;
}

public sealed class RetryOptions
{
    [Range(0, int.MaxValue)]
    public int Limit { get; set; } = 3;
    public TimeSpan MinInterval { get; set; } = TimeSpan.FromMilliseconds(200);
    public TimeSpan MaxInterval { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>The web dashboard (Pipeline:Dashboard).</summary>
public sealed class DashboardOptions
{
    /// <summary>The address it listens on: loopback by default. Any other needs <see cref="Token"/>.</summary>
    public string Host { get; set; } = "127.0.0.1";

    [Range(0, 65535)]
    public int Port { get; set; } = 8080;

    /// <summary>
    /// The secret a browser or client must present (Authorization: Bearer, or ?token= once, which sets a cookie): for
    /// every page when the dashboard listens beyond loopback, and always to cancel training. From the environment
    /// (PIPELINE__DASHBOARD__TOKEN), never a file in the repository.
    /// </summary>
    public string? Token { get; set; }

    /// <summary>RabbitMQ's management API (http://127.0.0.1:15672) for queue depths and consumers; none by default.</summary>
    public string? RabbitMqManagementUrl { get; set; }

    /// <summary>
    /// Host names the dashboard answers besides the address it listens on (and, on loopback, localhost): a request
    /// naming any other host gets 400, so a page cannot read it through DNS rebinding. Put a proxy's name here.
    /// </summary>
    public List<string> AllowedHosts { get; set; } = [];
}

