using System.Text.Json;
using Microsoft.Data.Sqlite;
using Pipeline.Contracts.V1;

namespace Pipeline.Hosting;

/// <summary>
/// The run ledger: every run, every shard each stage wrote, and which inputs each stage has finished. It is the
/// source of truth for idempotency and resume; messages are only triggers. SQLite in WAL mode, so several
/// processes on one machine (or one shared mount) can use it at once.
/// </summary>
public sealed class RunLedger
{
    private readonly string _connectionString;

    public RunLedger(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();
        using var connection = Open();
        Execute(connection, """
            PRAGMA journal_mode=WAL;
            CREATE TABLE IF NOT EXISTS runs(run_id TEXT PRIMARY KEY, name TEXT, created TEXT, state TEXT, config TEXT);
            CREATE TABLE IF NOT EXISTS shards(shard_id TEXT PRIMARY KEY, run_id TEXT, stage TEXT, uri TEXT, sha256 TEXT,
                rows INTEGER, bytes INTEGER, config_hash TEXT, parents TEXT, extra TEXT, created TEXT);
            CREATE INDEX IF NOT EXISTS shards_by_stage ON shards(run_id, stage);
            CREATE TABLE IF NOT EXISTS processed(stage TEXT, input_id TEXT, run_id TEXT, state TEXT, outputs TEXT,
                stats TEXT, error TEXT, updated TEXT, PRIMARY KEY(stage, input_id));
            CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE IF NOT EXISTS metrics(run TEXT, kind TEXT, step INTEGER, name TEXT, value REAL, ts TEXT);
            CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics(run, kind);
            CREATE TABLE IF NOT EXISTS evals(run_name TEXT, step INTEGER, checkpoint TEXT, task TEXT, task_version TEXT,
                metric TEXT, value REAL, ts TEXT, PRIMARY KEY(checkpoint, task, task_version, metric));
            """);
    }

    public void EnsureRun(string runId, string name, string config)
    {
        using var c = Open();
        Execute(c, "INSERT OR IGNORE INTO runs VALUES($id, $name, $ts, 'running', $config)",
            ("$id", runId), ("$name", name), ("$ts", Now()), ("$config", config));
    }

    public void SetRunState(string runId, string state)
    {
        using var c = Open();
        Execute(c, "UPDATE runs SET state=$s WHERE run_id=$id", ("$s", state), ("$id", runId));
    }

    public string? RunState(string runId)
    {
        using var c = Open();
        return Scalar(c, "SELECT state FROM runs WHERE run_id=$id", ("$id", runId)) as string;
    }

    public bool IsProcessed(string stage, string inputId)
    {
        using var c = Open();
        return Scalar(c, "SELECT 1 FROM processed WHERE stage=$s AND input_id=$i AND state='done'", ("$s", stage), ("$i", inputId)) is not null;
    }

    /// <summary>Records a stage's outputs for one input and marks the input done, in one transaction.</summary>
    public void CompleteInput(string stage, string inputId, string runId, IReadOnlyList<ShardRef> outputs, object? stats = null, string? extra = null)
    {
        // A shard's own stats travel with it (the tokenizer's manifest reads token counts from here).
        extra ??= stats is null ? null : JsonSerializer.Serialize(stats);
        using var c = Open();
        using var tx = c.BeginTransaction();
        foreach (var shard in outputs)
            RecordShard(c, shard, extra);
        Execute(c, "INSERT OR REPLACE INTO processed VALUES($s, $i, $r, 'done', $o, $st, NULL, $ts)",
            ("$s", stage), ("$i", inputId), ("$r", runId), ("$o", JsonSerializer.Serialize(outputs.Select(o => o.ShardId))),
            ("$st", stats is null ? null : JsonSerializer.Serialize(stats)), ("$ts", Now()));
        tx.Commit();
    }

    public void FailInput(string stage, string inputId, string runId, string error)
    {
        using var c = Open();
        Execute(c, "INSERT OR REPLACE INTO processed VALUES($s, $i, $r, 'failed', '[]', NULL, $e, $ts)",
            ("$s", stage), ("$i", inputId), ("$r", runId), ("$e", error), ("$ts", Now()));
    }

    public void RecordShard(ShardRef shard, string? extra = null)
    {
        using var c = Open();
        RecordShard(c, shard, extra);
    }

    public IReadOnlyList<ShardRef> Shards(string runId, string stage)
    {
        using var c = Open();
        using var cmd = Command(c, "SELECT shard_id, uri, sha256, rows, bytes, stage, config_hash, parents, run_id FROM shards WHERE run_id=$r AND stage=$s ORDER BY created, shard_id",
            ("$r", runId), ("$s", stage));
        using var reader = cmd.ExecuteReader();
        var list = new List<ShardRef>();
        while (reader.Read())
            list.Add(new ShardRef(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4),
                reader.GetString(5), reader.GetString(6), JsonSerializer.Deserialize<List<string>>(reader.GetString(7)) ?? [], reader.GetString(8)));
        return list;
    }

    public string? ShardExtra(string shardId)
    {
        using var c = Open();
        return Scalar(c, "SELECT extra FROM shards WHERE shard_id=$id", ("$id", shardId)) as string;
    }

    /// <summary>Shards that <paramref name="producer"/> wrote in a run which <paramref name="consumer"/> has not finished.</summary>
    public IReadOnlyList<ShardRef> Pending(string runId, string producer, string consumer) =>
        Shards(runId, producer).Where(s => !IsProcessed(consumer, s.ShardId)).ToList();

    /// <summary>Inputs that failed for good at a stage, with their errors.</summary>
    public IReadOnlyList<(string InputId, string Error)> Failures(string runId, string stage)
    {
        using var c = Open();
        using var cmd = Command(c, "SELECT input_id, error FROM processed WHERE run_id=$r AND stage=$s AND state='failed'", ("$r", runId), ("$s", stage));
        using var reader = cmd.ExecuteReader();
        var list = new List<(string, string)>();
        while (reader.Read()) list.Add((reader.GetString(0), reader.IsDBNull(1) ? "" : reader.GetString(1)));
        return list;
    }

    /// <summary>Stats objects that a stage recorded for the inputs it finished in a run (JSON text).</summary>
    public IReadOnlyList<string> Stats(string runId, string stage)
    {
        using var c = Open();
        using var cmd = Command(c, "SELECT stats FROM processed WHERE run_id=$r AND stage=$s AND state='done' AND stats IS NOT NULL ORDER BY updated", ("$r", runId), ("$s", stage));
        using var reader = cmd.ExecuteReader();
        var list = new List<string>();
        while (reader.Read()) list.Add(reader.GetString(0));
        return list;
    }

    public IReadOnlyList<RunSummary> Runs()
    {
        using var c = Open();
        using var cmd = Command(c, "SELECT run_id, name, created, state FROM runs ORDER BY created");
        using var reader = cmd.ExecuteReader();
        var runs = new List<(string Id, string Name, string Created, string State)>();
        while (reader.Read()) runs.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3)));
        reader.Close();
        var result = new List<RunSummary>();
        foreach (var run in runs)
        {
            using var stageCmd = Command(c, "SELECT stage, COUNT(*), SUM(rows), SUM(bytes) FROM shards WHERE run_id=$r GROUP BY stage", ("$r", run.Id));
            using var stageReader = stageCmd.ExecuteReader();
            var stages = new List<StageSummary>();
            while (stageReader.Read())
                stages.Add(new StageSummary(stageReader.GetString(0), stageReader.GetInt32(1), stageReader.GetInt64(2), stageReader.GetInt64(3)));
            result.Add(new RunSummary(run.Id, run.Name, run.Created, run.State, stages));
        }
        return result;
    }

    public string? Get(string key)
    {
        using var c = Open();
        return Scalar(c, "SELECT value FROM kv WHERE key=$k", ("$k", key)) as string;
    }

    public IReadOnlyList<string> KeysWithPrefix(string prefix)
    {
        using var c = Open();
        using var cmd = Command(c, "SELECT key FROM kv WHERE key >= $p AND key < $q ORDER BY key", ("$p", prefix), ("$q", prefix + "\uffff"));
        using var reader = cmd.ExecuteReader();
        var list = new List<string>();
        while (reader.Read()) list.Add(reader.GetString(0));
        return list;
    }

    public void Set(string key, string value)
    {
        using var c = Open();
        Execute(c, "INSERT OR REPLACE INTO kv VALUES($k, $v)", ("$k", key), ("$v", value));
    }

    public void AddMetric(string run, string kind, long step, string name, double value)
    {
        using var c = Open();
        Execute(c, "INSERT INTO metrics VALUES($r, $k, $s, $n, $v, $ts)", ("$r", run), ("$k", kind), ("$s", step), ("$n", name), ("$v", value), ("$ts", Now()));
    }

    public IReadOnlyList<(long Step, string Name, double Value)> Metrics(string run, string kind)
    {
        using var c = Open();
        using var cmd = Command(c, "SELECT step, name, value FROM metrics WHERE run=$r AND kind=$k ORDER BY step", ("$r", run), ("$k", kind));
        using var reader = cmd.ExecuteReader();
        var list = new List<(long, string, double)>();
        while (reader.Read()) list.Add((reader.GetInt64(0), reader.GetString(1), reader.GetDouble(2)));
        return list;
    }

    public bool HasEval(string checkpoint, string task, string version)
    {
        using var c = Open();
        return Scalar(c, "SELECT 1 FROM evals WHERE checkpoint=$c AND task=$t AND task_version=$v", ("$c", checkpoint), ("$t", task), ("$v", version)) is not null;
    }

    public void AddEval(string runName, long step, string checkpoint, string task, string version, IReadOnlyDictionary<string, double> metrics)
    {
        using var c = Open();
        using var tx = c.BeginTransaction();
        foreach (var (metric, value) in metrics)
            Execute(c, "INSERT OR REPLACE INTO evals VALUES($r, $s, $c, $t, $v, $m, $x, $ts)",
                ("$r", runName), ("$s", step), ("$c", checkpoint), ("$t", task), ("$v", version), ("$m", metric), ("$x", value), ("$ts", Now()));
        tx.Commit();
    }

    public IReadOnlyList<EvalRow> Evals(string? runName = null)
    {
        using var c = Open();
        using var cmd = Command(c, "SELECT run_name, step, checkpoint, task, task_version, metric, value FROM evals WHERE $r IS NULL OR run_name=$r ORDER BY run_name, step, task, metric",
            ("$r", runName));
        using var reader = cmd.ExecuteReader();
        var list = new List<EvalRow>();
        while (reader.Read())
            list.Add(new EvalRow(reader.GetString(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5), reader.GetDouble(6)));
        return list;
    }

    private static void RecordShard(SqliteConnection c, ShardRef shard, string? extra) =>
        Execute(c, "INSERT OR REPLACE INTO shards VALUES($id, $run, $stage, $uri, $sha, $rows, $bytes, $cfg, $parents, $extra, $ts)",
            ("$id", shard.ShardId), ("$run", shard.RunId), ("$stage", shard.Stage), ("$uri", shard.Uri), ("$sha", shard.Sha256),
            ("$rows", shard.Rows), ("$bytes", shard.Bytes), ("$cfg", shard.ConfigHash), ("$parents", JsonSerializer.Serialize(shard.ParentShardIds)),
            ("$extra", extra), ("$ts", Now()));

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        Execute(connection, "PRAGMA busy_timeout=30000; PRAGMA synchronous=NORMAL;");
        return connection;
    }

    private static string Now() => DateTimeOffset.UtcNow.ToString("O");

    private static SqliteCommand Command(SqliteConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
            cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return cmd;
    }

    private static void Execute(SqliteConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = Command(c, sql, parameters);
        cmd.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = Command(c, sql, parameters);
        var value = cmd.ExecuteScalar();
        return value is DBNull ? null : value;
    }
}

public sealed record StageSummary(string Stage, int Shards, long Rows, long Bytes);

public sealed record RunSummary(string RunId, string Name, string Created, string State, IReadOnlyList<StageSummary> Stages);

public sealed record EvalRow(string RunName, long Step, string Checkpoint, string Task, string TaskVersion, string Metric, double Value);
