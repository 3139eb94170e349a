using System.Text.Json;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;
using Pipeline.Contracts.V1;

namespace Pipeline.Runtime;

/// <summary>
/// The run ledger: every run, every shard each stage wrote, and which inputs each stage has finished. It is the
/// source of truth for idempotency and resume; messages are only triggers. Two backends with one schema
/// (<see cref="LedgerSchema"/>) and the same statements: SQLite in WAL mode, the embedded default, for the
/// processes of one host; PostgreSQL for services on several hosts. Every idempotency guard is one statement or
/// one transaction (<c>INSERT ... ON CONFLICT</c>), so hosts racing on the same input record it once.
/// </summary>
public sealed partial class RunLedger
{
    private readonly Func<DbConnection> _open;
    private readonly bool _postgres;

    /// <summary>The embedded ledger: a SQLite file (WAL), shared by the processes of one host.</summary>
    public RunLedger(string path)
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

    private RunLedger(NpgsqlDataSource source, string location)
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
    public static RunLedger PostgreSql(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var location = $"postgresql://{builder.Host}:{builder.Port}/{builder.Database}";
        try
        {
            return new RunLedger(NpgsqlDataSource.Create(builder), location);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            throw new InvalidOperationException($"ledger {location}: {e.Message}", e);
        }
    }

    /// <summary>PostgreSQL when a connection string is given (Pipeline:Ledger:ConnectionString), otherwise SQLite in the data root.</summary>
    public static RunLedger Open(string dataRoot, string? connectionString) =>
        string.IsNullOrWhiteSpace(connectionString)
            ? new RunLedger(Path.Combine(dataRoot, "ledger.db"))
            : PostgreSql(connectionString);

    /// <summary>Where the ledger lives: a file path or postgresql://host:port/database (no credentials).</summary>
    public string Location { get; }

    /// <summary>The long jobs (crawls, training runs, alignment jobs), typed.</summary>
    public JobStore Jobs => new(this);

    private void Migrate()
    {
        using var c = _open();
        // Hosts that start together must not both run a step, nor both create the version table (PostgreSQL's
        // CREATE TABLE IF NOT EXISTS is not safe against a concurrent one): PostgreSQL serializes them on a
        // transaction-scoped advisory lock, SQLite on its write lock (BEGIN IMMEDIATE).
        using var tx = c is SqliteConnection sqlite ? sqlite.BeginTransaction(deferred: false) : c.BeginTransaction();
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

    public void EnsureRun(string runId, string name, string config)
    {
        using var c = _open();
        Execute(c, "INSERT INTO runs VALUES(@id, @name, @ts, 'running', @config) ON CONFLICT DO NOTHING",
            ("@id", runId), ("@name", name), ("@ts", Now()), ("@config", config));
    }

    /// <summary>The configuration a run was started with (<see cref="EnsureRun"/>), or null when there is no such run.</summary>
    public string? RunConfig(string runId)
    {
        using var c = _open();
        return Scalar(c, "SELECT config FROM runs WHERE run_id=@id", ("@id", runId)) as string;
    }

    public void SetRunState(string runId, string state)
    {
        using var c = _open();
        Execute(c, "UPDATE runs SET state=@s WHERE run_id=@id", ("@s", state), ("@id", runId));
    }

    public string? RunState(string runId)
    {
        using var c = _open();
        return Scalar(c, "SELECT state FROM runs WHERE run_id=@id", ("@id", runId)) as string;
    }

    public bool IsProcessed(string stage, string inputId)
    {
        using var c = _open();
        return Scalar(c, "SELECT 1 FROM processed WHERE stage=@s AND input_id=@i AND state='done'", ("@s", stage), ("@i", inputId)) is not null;
    }

    /// <summary>Records a stage's outputs for one input and marks the input done, in one transaction.</summary>
    public void CompleteInput(string stage, string inputId, string runId, IReadOnlyList<ShardRef> outputs, object? stats = null, string? extra = null)
    {
        // A shard's own stats travel with it (the tokenizer's manifest reads token counts from here).
        extra ??= stats is null ? null : JsonSerializer.Serialize(stats);
        using var c = _open();
        using var tx = c.BeginTransaction();
        foreach (var shard in outputs)
            RecordShard(c, shard, extra);
        SetProcessed(c, stage, inputId, runId, "done", JsonSerializer.Serialize(outputs.Select(o => o.ShardId)),
            stats is null ? null : JsonSerializer.Serialize(stats), null);
        tx.Commit();
        PipelineMetrics.InputCompleted(stage, outputs);
    }

    public void FailInput(string stage, string inputId, string runId, string error)
    {
        using var c = _open();
        SetProcessed(c, stage, inputId, runId, "failed", "[]", null, error);
    }

    public void RecordShard(ShardRef shard, string? extra = null)
    {
        using var c = _open();
        RecordShard(c, shard, extra);
    }

    public IReadOnlyList<ShardRef> Shards(string runId, string stage)
    {
        using var c = _open();
        using var cmd = Command(c, "SELECT shard_id, uri, sha256, rows, bytes, stage, config_hash, parents, run_id FROM shards WHERE run_id=@r AND stage=@s ORDER BY created, shard_id",
            ("@r", runId), ("@s", stage));
        using var reader = cmd.ExecuteReader();
        var list = new List<ShardRef>();
        while (reader.Read())
            list.Add(new ShardRef(reader.GetString(0), reader.GetString(1), reader.GetString(2), Convert.ToInt64(reader.GetValue(3)), Convert.ToInt64(reader.GetValue(4)),
                reader.GetString(5), reader.GetString(6), JsonSerializer.Deserialize<List<string>>(reader.GetString(7)) ?? [], reader.GetString(8)));
        return list;
    }

    public string? ShardExtra(string shardId)
    {
        using var c = _open();
        return Scalar(c, "SELECT extra FROM shards WHERE shard_id=@id", ("@id", shardId)) as string;
    }

    /// <summary>Shards that <paramref name="producer"/> wrote in a run which <paramref name="consumer"/> has not finished.</summary>
    public IReadOnlyList<ShardRef> Pending(string runId, string producer, string consumer) =>
        Shards(runId, producer).Where(s => !IsProcessed(consumer, s.ShardId)).ToList();

    /// <summary>Inputs that failed for good at a stage, with their errors.</summary>
    public IReadOnlyList<(string InputId, string Error)> Failures(string runId, string stage)
    {
        using var c = _open();
        using var cmd = Command(c, "SELECT input_id, error FROM processed WHERE run_id=@r AND stage=@s AND state='failed'", ("@r", runId), ("@s", stage));
        using var reader = cmd.ExecuteReader();
        var list = new List<(string, string)>();
        while (reader.Read()) list.Add((reader.GetString(0), reader.IsDBNull(1) ? "" : reader.GetString(1)));
        return list;
    }

    /// <summary>How many inputs a stage has finished in a run.</summary>
    public long ProcessedCount(string runId, string stage)
    {
        using var c = _open();
        return Convert.ToInt64(Scalar(c, "SELECT COUNT(*) FROM processed WHERE run_id=@r AND stage=@s AND state='done'", ("@r", runId), ("@s", stage)));
    }

    /// <summary>Stats objects that a stage recorded for the inputs it finished in a run (JSON text).</summary>
    public IReadOnlyList<string> Stats(string runId, string stage)
    {
        using var c = _open();
        using var cmd = Command(c, "SELECT stats FROM processed WHERE run_id=@r AND stage=@s AND state='done' AND stats IS NOT NULL ORDER BY updated", ("@r", runId), ("@s", stage));
        using var reader = cmd.ExecuteReader();
        var list = new List<string>();
        while (reader.Read()) list.Add(reader.GetString(0));
        return list;
    }

    public IReadOnlyList<RunSummary> Runs()
    {
        using var c = _open();
        using var cmd = Command(c, "SELECT run_id, name, created, state FROM runs ORDER BY created");
        using var reader = cmd.ExecuteReader();
        var runs = new List<(string Id, string Name, string Created, string State)>();
        while (reader.Read()) runs.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3)));
        reader.Close();
        var result = new List<RunSummary>();
        foreach (var run in runs)
        {
            // CAST: PostgreSQL sums BIGINT into NUMERIC.
            using var stageCmd = Command(c, "SELECT stage, COUNT(*), CAST(SUM(rows) AS BIGINT), CAST(SUM(bytes) AS BIGINT) FROM shards WHERE run_id=@r GROUP BY stage ORDER BY stage", ("@r", run.Id));
            using var stageReader = stageCmd.ExecuteReader();
            var stages = new List<StageSummary>();
            while (stageReader.Read())
                stages.Add(new StageSummary(stageReader.GetString(0), Convert.ToInt32(stageReader.GetValue(1)), Convert.ToInt64(stageReader.GetValue(2)), Convert.ToInt64(stageReader.GetValue(3))));
            result.Add(new RunSummary(run.Id, run.Name, run.Created, run.State, stages));
        }
        return result;
    }

    public string? Get(string key)
    {
        using var c = _open();
        return Scalar(c, "SELECT value FROM kv WHERE key=@k", ("@k", key)) as string;
    }

    public IReadOnlyList<string> KeysWithPrefix(string prefix)
    {
        using var c = _open();
        // Code-point order on both backends: SQLite compares TEXT bytewise, so a range scan uses the key index;
        // PostgreSQL's default collation is the locale's, so it matches with starts_with and sorts as "C".
        using var cmd = _postgres
            ? Command(c, "SELECT key FROM kv WHERE starts_with(key, @p) ORDER BY key COLLATE \"C\"", ("@p", prefix))
            : Command(c, "SELECT key FROM kv WHERE key >= @p AND key < @q ORDER BY key", ("@p", prefix), ("@q", prefix + "\uffff"));
        using var reader = cmd.ExecuteReader();
        var list = new List<string>();
        while (reader.Read()) list.Add(reader.GetString(0));
        return list;
    }

    public void Set(string key, string value)
    {
        using var c = _open();
        Execute(c, "INSERT INTO kv VALUES(@k, @v) ON CONFLICT(key) DO UPDATE SET value=excluded.value", ("@k", key), ("@v", value));
    }

    /// <summary>
    /// Sets <paramref name="key"/> only if no value is there yet, in one statement; true for the one caller that set
    /// it when several hosts race.
    /// </summary>
    public bool SetIfAbsent(string key, string value)
    {
        using var c = _open();
        return Execute(c, "INSERT INTO kv VALUES(@k, @v) ON CONFLICT DO NOTHING", ("@k", key), ("@v", value)) == 1;
    }

    /// <summary>
    /// Takes or renews the lease <paramref name="name"/> for <paramref name="holder"/> until now + <paramref name="ttl"/>,
    /// in one statement: it succeeds when nobody holds it, when the holder already does, or when the last holder's
    /// lease has expired (a dead holder). False while another holder's lease runs.
    /// </summary>
    public bool TryAcquireLease(string name, string holder, TimeSpan ttl)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        using var c = _open();
        return Execute(c, """
            INSERT INTO leases VALUES(@n, @h, @until)
            ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, expires=excluded.expires
            WHERE leases.holder=excluded.holder OR leases.expires < @now
            """, ("@n", name), ("@h", holder), ("@until", now + (long)ttl.TotalMilliseconds), ("@now", now)) == 1;
    }

    /// <summary>Gives the lease up if <paramref name="holder"/> holds it, so a waiting host need not wait for it to expire.</summary>
    public void ReleaseLease(string name, string holder)
    {
        using var c = _open();
        Execute(c, "DELETE FROM leases WHERE name=@n AND holder=@h", ("@n", name), ("@h", holder));
    }

    public void AddMetric(string run, string kind, long step, string name, double value)
    {
        PipelineMetrics.TrainingMetric(run, step, name, value);
        using var c = _open();
        Execute(c, "INSERT INTO metrics VALUES(@r, @k, @s, @n, @v, @ts)", ("@r", run), ("@k", kind), ("@s", step), ("@n", name), ("@v", value), ("@ts", Now()));
    }

    public IReadOnlyList<(long Step, string Name, double Value)> Metrics(string run, string kind)
    {
        using var c = _open();
        using var cmd = Command(c, "SELECT step, name, value FROM metrics WHERE run=@r AND kind=@k ORDER BY step", ("@r", run), ("@k", kind));
        using var reader = cmd.ExecuteReader();
        var list = new List<(long, string, double)>();
        while (reader.Read()) list.Add((Convert.ToInt64(reader.GetValue(0)), reader.GetString(1), Convert.ToDouble(reader.GetValue(2))));
        return list;
    }

    public bool HasEval(string checkpoint, string task, string version)
    {
        using var c = _open();
        return Scalar(c, "SELECT 1 FROM evals WHERE checkpoint=@c AND task=@t AND task_version=@v", ("@c", checkpoint), ("@t", task), ("@v", version)) is not null;
    }

    public void AddEval(string runName, long step, string checkpoint, string task, string version, IReadOnlyDictionary<string, double> metrics)
    {
        foreach (var (metric, value) in metrics) PipelineMetrics.Score(runName, task, metric, value);
        using var c = _open();
        using var tx = c.BeginTransaction();
        foreach (var (metric, value) in metrics)
            Execute(c, """
                INSERT INTO evals VALUES(@r, @s, @c, @t, @v, @m, @x, @ts)
                ON CONFLICT(checkpoint, task, task_version, metric) DO UPDATE SET run_name=excluded.run_name, step=excluded.step,
                    value=excluded.value, ts=excluded.ts
                """,
                ("@r", runName), ("@s", step), ("@c", checkpoint), ("@t", task), ("@v", version), ("@m", metric), ("@x", value), ("@ts", Now()));
        tx.Commit();
    }

    public IReadOnlyList<EvalRow> Evals(string? runName = null)
    {
        using var c = _open();
        const string select = "SELECT run_name, step, checkpoint, task, task_version, metric, value FROM evals";
        const string order = " ORDER BY run_name, step, task, metric";
        using var cmd = runName is null ? Command(c, select + order) : Command(c, select + " WHERE run_name=@r" + order, ("@r", runName));
        using var reader = cmd.ExecuteReader();
        var list = new List<EvalRow>();
        while (reader.Read())
            list.Add(new EvalRow(reader.GetString(0), Convert.ToInt64(reader.GetValue(1)), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                reader.GetString(5), Convert.ToDouble(reader.GetValue(6))));
        return list;
    }

    private static void SetProcessed(DbConnection c, string stage, string inputId, string runId, string state, string outputs, string? stats, string? error) =>
        Execute(c, """
            INSERT INTO processed VALUES(@s, @i, @r, @state, @o, @st, @e, @ts)
            ON CONFLICT(stage, input_id) DO UPDATE SET run_id=excluded.run_id, state=excluded.state, outputs=excluded.outputs,
                stats=excluded.stats, error=excluded.error, updated=excluded.updated
            """,
            ("@s", stage), ("@i", inputId), ("@r", runId), ("@state", state), ("@o", outputs), ("@st", stats), ("@e", error), ("@ts", Now()));

    private static void RecordShard(DbConnection c, ShardRef shard, string? extra) =>
        Execute(c, """
            INSERT INTO shards VALUES(@id, @run, @stage, @uri, @sha, @rows, @bytes, @cfg, @parents, @extra, @ts)
            ON CONFLICT(shard_id) DO UPDATE SET run_id=excluded.run_id, stage=excluded.stage, uri=excluded.uri, sha256=excluded.sha256,
                rows=excluded.rows, bytes=excluded.bytes, config_hash=excluded.config_hash, parents=excluded.parents,
                extra=excluded.extra, created=excluded.created
            """,
            ("@id", shard.ShardId), ("@run", shard.RunId), ("@stage", shard.Stage), ("@uri", shard.Uri), ("@sha", shard.Sha256),
            ("@rows", shard.Rows), ("@bytes", shard.Bytes), ("@cfg", shard.ConfigHash), ("@parents", JsonSerializer.Serialize(shard.ParentShardIds)),
            ("@extra", extra), ("@ts", Now()));

    private static string Now() => DateTimeOffset.UtcNow.ToString("O");

    private static DbCommand Command(DbConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = cmd.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            // A null with no type cannot be inferred by PostgreSQL in every position; every nullable column is TEXT.
            if (value is null) parameter.DbType = System.Data.DbType.String;
            cmd.Parameters.Add(parameter);
        }
        return cmd;
    }

    private static int Execute(DbConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = Command(c, sql, parameters);
        return cmd.ExecuteNonQuery();
    }

    private static object? Scalar(DbConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = Command(c, sql, parameters);
        var value = cmd.ExecuteScalar();
        return value is DBNull ? null : value;
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
