using static Pipeline.Runtime.LedgerSql;

namespace Pipeline.Runtime;

/// <summary>The runs: each run's name, state and the request it was started with.</summary>
public sealed class RunStore(Ledger db)
{
    public void Ensure(string runId, string name, string config)
    {
        using var c = db.Connect();
        Execute(c, "INSERT INTO runs VALUES(@id, @name, @ts, 'running', @config) ON CONFLICT DO NOTHING",
            ("@id", runId), ("@name", name), ("@ts", Now()), ("@config", config));
    }

    /// <summary>The configuration a run was started with (<see cref="Ensure"/>), or null when there is no such run.</summary>
    public string? Config(string runId)
    {
        using var c = db.Connect();
        return Scalar(c, "SELECT config FROM runs WHERE run_id=@id", ("@id", runId)) as string;
    }

    public void SetState(string runId, string state)
    {
        using var c = db.Connect();
        Execute(c, "UPDATE runs SET state=@s WHERE run_id=@id", ("@s", state), ("@id", runId));
    }

    public string? State(string runId)
    {
        using var c = db.Connect();
        return Scalar(c, "SELECT state FROM runs WHERE run_id=@id", ("@id", runId)) as string;
    }

    public IReadOnlyList<RunSummary> List()
    {
        using var c = db.Connect();
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
}
