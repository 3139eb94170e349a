using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;
using static Pipeline.Runtime.LedgerSql;

namespace Pipeline.Runtime;

/// <summary>
/// The run ledger: every run, every shard each stage wrote, and which inputs each stage has finished, in typed stores
/// (<see cref="Runs"/>, <see cref="Artifacts"/>, <see cref="Jobs"/>, <see cref="Evaluations"/>, <see cref="Documents"/>,
/// <see cref="Leases"/>, <see cref="Claims"/>, <see cref="CrawlParts"/>). It is the
/// source of truth for idempotency and resume; messages are only triggers. Two backends with one schema
/// (<see cref="LedgerSchema"/>) and the same statements: SQLite in WAL mode, the embedded default, for the
/// processes of one host; PostgreSQL for services on several hosts. Every idempotency guard is one statement or
/// one transaction (<c>INSERT ... ON CONFLICT</c>), so hosts racing on the same input record it once.
/// </summary>
public sealed class Ledger
{
    private readonly Func<DbConnection> _open;
    private readonly bool _postgres;

    /// <summary>The embedded ledger: a SQLite file (WAL), shared by the processes of one host.</summary>
    public Ledger(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();
        _open = () =>
        {
            var connection = new SqliteConnection(connectionString);
            connection.Open();
            Execute(connection, "PRAGMA busy_timeout=30000; PRAGMA synchronous=NORMAL;");
            return connection;
        };
        Location = Path.GetFullPath(path);
        try
        {
            using (var connection = _open())
                Execute(connection, "PRAGMA journal_mode=WAL;");
            Migrate();
        }
        catch (SqliteException e)
        {
            // A corrupt, truncated or foreign file, or a full or read-only disk: one line naming the file.
            throw new InvalidDataException($"ledger '{Location}' cannot be used: {e.Message} (a damaged ledger can be moved away to start afresh)", e);
        }
    }

    private Ledger(NpgsqlDataSource source, string location)
    {
        _postgres = true;
        _open = () => source.OpenConnection();
        Location = location;
        Migrate();
    }

    /// <summary>
    /// The ledger of several hosts: a PostgreSQL database (Npgsql). The connection string comes from configuration
    /// or the environment (Pipeline:Ledger:ConnectionString); the password is best left to PGPASSWORD or ~/.pgpass.
    /// </summary>
    public static Ledger PostgreSql(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var location = $"postgresql://{builder.Host}:{builder.Port}/{builder.Database}";
        try
        {
            return new Ledger(NpgsqlDataSource.Create(builder), location);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            throw new InvalidOperationException($"ledger {location}: {e.Message}", e);
        }
    }

    /// <summary>PostgreSQL when a connection string is given (Pipeline:Ledger:ConnectionString), otherwise SQLite in the data root.</summary>
    public static Ledger Open(string dataRoot, string? connectionString) =>
        string.IsNullOrWhiteSpace(connectionString)
            ? new Ledger(Path.Combine(dataRoot, "ledger.db"))
            : PostgreSql(connectionString);

    /// <summary>Where the ledger lives: a file path or postgresql://host:port/database (no credentials).</summary>
    public string Location { get; }

    /// <summary>Whether the ledger is a PostgreSQL database (shared by hosts) rather than a SQLite file in one data root.</summary>
    public bool IsShared => _postgres;

    /// <summary>The runs.</summary>
    public RunStore Runs => new(this);

    /// <summary>Shards written and inputs finished, per stage.</summary>
    public ArtifactStore Artifacts => new(this);

    /// <summary>The long jobs (crawls, training runs, alignment jobs), typed.</summary>
    public JobStore Jobs => new(this);

    /// <summary>Training curves and evaluation scores.</summary>
    public EvaluationStore Evaluations => new(this);

    /// <summary>Small documents by key.</summary>
    public DocumentStore Documents => new(this);

    public LeaseStore Leases => new(this);

    public ClaimStore Claims => new(this);

    /// <summary>Kept documents that a duplicate with a smaller id superseded later (skipped by tokenization).</summary>
    public SupersededStore Superseded => new(this);

    public CrawlPartStore CrawlParts => new(this);

    internal DbConnection Connect() => _open();

    internal bool IsPostgres => _postgres;

    private void Migrate()
    {
        using var c = _open();
        // Hosts that start together must not both run a step, nor both create the version table (PostgreSQL's
        // CREATE TABLE IF NOT EXISTS is not safe against a concurrent one): PostgreSQL serializes them on a
        // transaction-scoped advisory lock, SQLite on its write lock (BEGIN IMMEDIATE).
        using var tx = BeginWrite(c);
        if (_postgres)
            Execute(c, "SELECT pg_advisory_xact_lock(727001)");
        Execute(c, "CREATE TABLE IF NOT EXISTS schema_version(version BIGINT PRIMARY KEY, applied TEXT)");
        var applied = Convert.ToInt64(Scalar(c, "SELECT COALESCE(MAX(version), 0) FROM schema_version"));
        for (var version = applied + 1; version <= LedgerSchema.Steps.Count; version++)
        {
            Execute(c, LedgerSchema.Steps[(int)version - 1]);
            Execute(c, "INSERT INTO schema_version VALUES(@v, @ts) ON CONFLICT DO NOTHING", ("@v", version), ("@ts", Now()));
        }
        tx.Commit();
    }

    /// <summary>The schema version this build migrates every ledger to.</summary>
    public static int LatestSchemaVersion => LedgerSchema.Steps.Count;

    /// <summary>The schema version this ledger is at (the number of migration steps applied).</summary>
    public long SchemaVersion()
    {
        using var c = _open();
        return Convert.ToInt64(Scalar(c, "SELECT COALESCE(MAX(version), 0) FROM schema_version"));
    }

    /// <summary>
    /// A value that changes whenever shards, inputs, metrics, scores or small documents are added or change state
    /// (row counts, the latest timestamps, the documents' total length, the runs' states): one read, so a page can poll it every second.
    /// </summary>
    public string ChangeMark()
    {
        using var c = _open();
        var states = _postgres ? "string_agg(state, ',')" : "group_concat(state, ',')";
        using var cmd = Command(c, $"""
            SELECT (SELECT COUNT(*) FROM shards) || '/' || (SELECT COALESCE(MAX(created), '') FROM shards) || '/' ||
                   (SELECT COUNT(*) FROM processed) || '/' || (SELECT COALESCE(MAX(updated), '') FROM processed) || '/' ||
                   (SELECT COUNT(*) FROM metrics) || '/' || (SELECT COUNT(*) FROM evals) || '/' ||
                   (SELECT COUNT(*) FROM kv) || '/' || (SELECT COALESCE(SUM(LENGTH(value)), 0) FROM kv) || '/' ||
                   (SELECT COUNT(*) FROM runs) || '/' || (SELECT COALESCE({states}, '') FROM runs)
            """);
        return Convert.ToString(cmd.ExecuteScalar()) ?? "";
    }
}

public sealed record StageSummary(string Stage, int Shards, long Rows, long Bytes);

public sealed record RunSummary(string RunId, string Name, string Created, string State, IReadOnlyList<StageSummary> Stages);

public sealed record EvalRow(string RunName, long Step, string Checkpoint, string Task, string TaskVersion, string Metric, double Value);

/// <summary>The metrics of an evaluation that are not scores themselves, and the columns of a table of scores.</summary>
public static class EvalMetrics
{
    /// <summary>The suffix of a metric's standard error.</summary>
    public const string StderrSuffix = "_stderr";

    /// <summary>How many examples a task scored.</summary>
    public const string Examples = "examples";

    /// <summary>A multiple-choice task's expected accuracy when choosing at random.</summary>
    public const string Chance = "chance";

    /// <summary>The task the evaluator scores every checkpoint on: perplexity on the run's validation split.</summary>
    public const string ValidationTask = "validation_perplexity";

    public static bool IsScore(string metric) => metric is not (Examples or Chance) && !metric.EndsWith(StderrSuffix, StringComparison.Ordinal);

    /// <summary>The (task, metric) pairs scored in <paramref name="rows"/>: validation first, then by task and metric name.</summary>
    public static IReadOnlyList<(string Task, string Metric)> Columns(IEnumerable<EvalRow> rows) =>
        rows.Where(e => IsScore(e.Metric)).Select(e => (e.Task, e.Metric)).Distinct()
            .OrderBy(c => c.Task == ValidationTask ? 0 : 1).ThenBy(c => c.Task, StringComparer.Ordinal).ThenBy(c => c.Metric, StringComparer.Ordinal).ToList();
}
