using static Pipeline.Runtime.LedgerSql;

namespace Pipeline.Runtime;

/// <summary>Training curves and evaluation scores: metrics per run and step, scores per checkpoint, task, version and metric.</summary>
public sealed class EvaluationStore(Ledger db)
{
    /// <summary>The metrics kind of an alignment job's steps (loss and its figures: RL's reward, KL, entropy, ...); pretraining's is "train".</summary>
    public const string AlignmentKind = "align";

    public void AddMetric(string run, string kind, long step, string name, double value)
    {
        PipelineMetrics.TrainingMetric(run, step, name, value);
        using var c = db.Connect();
        Execute(c, "INSERT INTO metrics VALUES(@r, @k, @s, @n, @v, @ts)", ("@r", run), ("@k", kind), ("@s", step), ("@n", name), ("@v", value), ("@ts", Now()));
    }

    public IReadOnlyList<(long Step, string Name, double Value)> Metrics(string run, string kind)
    {
        using var c = db.Connect();
        using var cmd = Command(c, "SELECT step, name, value FROM metrics WHERE run=@r AND kind=@k ORDER BY step", ("@r", run), ("@k", kind));
        using var reader = cmd.ExecuteReader();
        var list = new List<(long, string, double)>();
        while (reader.Read()) list.Add((Convert.ToInt64(reader.GetValue(0)), reader.GetString(1), Convert.ToDouble(reader.GetValue(2))));
        return list;
    }

    public bool HasEval(string checkpoint, string task, string version)
    {
        using var c = db.Connect();
        return Scalar(c, "SELECT 1 FROM evals WHERE checkpoint=@c AND task=@t AND task_version=@v", ("@c", checkpoint), ("@t", task), ("@v", version)) is not null;
    }

    public void AddEval(string runName, long step, string checkpoint, string task, string version, IReadOnlyDictionary<string, double> metrics)
    {
        foreach (var (metric, value) in metrics) PipelineMetrics.Score(runName, task, metric, value);
        using var c = db.Connect();
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
        using var c = db.Connect();
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
}
