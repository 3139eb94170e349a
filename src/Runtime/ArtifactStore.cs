using System.Text.Json;
using System.Data.Common;
using Pipeline.Contracts.V1;
using static Pipeline.Runtime.LedgerSql;

namespace Pipeline.Runtime;

/// <summary>The shards every stage wrote and which inputs each stage has finished (or failed): the record that makes every stage idempotent and every run resumable.</summary>
public sealed class ArtifactStore(Ledger db)
{
    public bool IsProcessed(string stage, string inputId)
    {
        using var c = db.Connect();
        return Scalar(c, "SELECT 1 FROM processed WHERE stage=@s AND input_id=@i AND state='done'", ("@s", stage), ("@i", inputId)) is not null;
    }

    /// <summary>Records a stage's outputs for one input and marks the input done, in one transaction.</summary>
    public void CompleteInput(string stage, string inputId, string runId, IReadOnlyList<ShardRef> outputs, object? stats = null, string? extra = null)
    {
        // A shard's own stats travel with it (the tokenizer's manifest reads token counts from here).
        extra ??= stats is null ? null : JsonSerializer.Serialize(stats);
        using var c = db.Connect();
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
        using var c = db.Connect();
        SetProcessed(c, stage, inputId, runId, "failed", "[]", null, error);
    }

    public void RecordShard(ShardRef shard, string? extra = null)
    {
        using var c = db.Connect();
        RecordShard(c, shard, extra);
    }

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

    public IReadOnlyList<ShardRef> Shards(string runId, string stage)
    {
        using var c = db.Connect();
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
        using var c = db.Connect();
        return Scalar(c, "SELECT extra FROM shards WHERE shard_id=@id", ("@id", shardId)) as string;
    }

    /// <summary>Shards that <paramref name="producer"/> wrote in a run which <paramref name="consumer"/> has not finished.</summary>
    public IReadOnlyList<ShardRef> Pending(string runId, string producer, string consumer) =>
        Shards(runId, producer).Where(s => !IsProcessed(consumer, s.ShardId)).ToList();

    /// <summary>Inputs that failed for good at a stage, with their errors.</summary>
    public IReadOnlyList<(string InputId, string Error)> Failures(string runId, string stage)
    {
        using var c = db.Connect();
        using var cmd = Command(c, "SELECT input_id, error FROM processed WHERE run_id=@r AND stage=@s AND state='failed'", ("@r", runId), ("@s", stage));
        using var reader = cmd.ExecuteReader();
        var list = new List<(string, string)>();
        while (reader.Read()) list.Add((reader.GetString(0), reader.IsDBNull(1) ? "" : reader.GetString(1)));
        return list;
    }

    /// <summary>How many inputs a stage has finished in a run.</summary>
    public long ProcessedCount(string runId, string stage)
    {
        using var c = db.Connect();
        return Convert.ToInt64(Scalar(c, "SELECT COUNT(*) FROM processed WHERE run_id=@r AND stage=@s AND state='done'", ("@r", runId), ("@s", stage)));
    }

    /// <summary>Stats objects that a stage recorded for the inputs it finished in a run (JSON text).</summary>
    public IReadOnlyList<string> Stats(string runId, string stage)
    {
        using var c = db.Connect();
        using var cmd = Command(c, "SELECT stats FROM processed WHERE run_id=@r AND stage=@s AND state='done' AND stats IS NOT NULL ORDER BY updated", ("@r", runId), ("@s", stage));
        using var reader = cmd.ExecuteReader();
        var list = new List<string>();
        while (reader.Read()) list.Add(reader.GetString(0));
        return list;
    }

    /// <summary>Every shard a run's stages wrote: stage, when (UTC) and how many rows, oldest first.</summary>
    public IReadOnlyList<(string Stage, DateTimeOffset Created, long Rows)> Timeline(string runId)
    {
        using var c = db.Connect();
        using var cmd = Command(c, "SELECT stage, created, rows FROM shards WHERE run_id=@r ORDER BY created", ("@r", runId));
        using var reader = cmd.ExecuteReader();
        var list = new List<(string, DateTimeOffset, long)>();
        while (reader.Read())
            if (DateTimeOffset.TryParse(reader.GetString(1), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var created))
                list.Add((reader.GetString(0), created, Convert.ToInt64(reader.GetValue(2))));
        return list;
    }

    private static void SetProcessed(DbConnection c, string stage, string inputId, string runId, string state, string outputs, string? stats, string? error) =>
        Execute(c, """
            INSERT INTO processed VALUES(@s, @i, @r, @state, @o, @st, @e, @ts)
            ON CONFLICT(stage, input_id) DO UPDATE SET run_id=excluded.run_id, state=excluded.state, outputs=excluded.outputs,
                stats=excluded.stats, error=excluded.error, updated=excluded.updated
            """,
            ("@s", stage), ("@i", inputId), ("@r", runId), ("@state", state), ("@o", outputs), ("@st", stats), ("@e", error), ("@ts", Now()));
}
