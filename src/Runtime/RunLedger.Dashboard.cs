namespace Pipeline.Runtime;

/// <summary>Reads for watching runs (the dashboard): when shards were written, and a cheap sign that anything changed.</summary>
public sealed partial class RunLedger
{
    /// <summary>Every shard a run's stages wrote: stage, when (UTC) and how many rows, oldest first.</summary>
    public IReadOnlyList<(string Stage, DateTimeOffset Created, long Rows)> ShardTimeline(string runId)
    {
        using var c = _open();
        using var cmd = Command(c, "SELECT stage, created, rows FROM shards WHERE run_id=@r ORDER BY created", ("@r", runId));
        using var reader = cmd.ExecuteReader();
        var list = new List<(string, DateTimeOffset, long)>();
        while (reader.Read())
            if (DateTimeOffset.TryParse(reader.GetString(1), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var created))
                list.Add((reader.GetString(0), created, Convert.ToInt64(reader.GetValue(2))));
        return list;
    }

    /// <summary>
    /// The live-counter keys of a run's crawl jobs (one, or one per part of a split crawl). Not a bare prefix scan: the
    /// prefix of run "r" would also find the keys of run "r2".
    /// </summary>
    public IReadOnlyList<string> CrawlProgressKeys(string runId)
    {
        var key = LedgerKeys.CrawlProgress(runId);
        return KeysWithPrefix(key).Where(k => k == key || k.StartsWith(key + ":p", StringComparison.Ordinal)).ToList();
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
