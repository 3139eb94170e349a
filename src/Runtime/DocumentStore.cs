using static Pipeline.Runtime.LedgerSql;

namespace Pipeline.Runtime;

/// <summary>Small documents by key (summaries, progress counters, the tokenizer's name, index generations): the key-value table, keys defined in LedgerKeys and beside their writers.</summary>
public sealed class DocumentStore(Ledger db)
{
    public string? Get(string key)
    {
        using var c = db.Connect();
        return Scalar(c, "SELECT value FROM kv WHERE key=@k", ("@k", key)) as string;
    }

    public void Set(string key, string value)
    {
        using var c = db.Connect();
        Execute(c, "INSERT INTO kv VALUES(@k, @v) ON CONFLICT(key) DO UPDATE SET value=excluded.value", ("@k", key), ("@v", value));
    }

    /// <summary>
    /// Sets <paramref name="key"/> only if no value is there yet, in one statement; true for the one caller that set
    /// it when several hosts race.
    /// </summary>
    public bool SetIfAbsent(string key, string value)
    {
        using var c = db.Connect();
        return Execute(c, "INSERT INTO kv VALUES(@k, @v) ON CONFLICT DO NOTHING", ("@k", key), ("@v", value)) == 1;
    }

    public IReadOnlyList<string> KeysWithPrefix(string prefix)
    {
        using var c = db.Connect();
        // Code-point order on both backends: SQLite compares TEXT bytewise, so a range scan uses the key index;
        // PostgreSQL's default collation is the locale's, so it matches with starts_with and sorts as "C".
        using var cmd = db.IsPostgres
            ? Command(c, "SELECT key FROM kv WHERE starts_with(key, @p) ORDER BY key COLLATE \"C\"", ("@p", prefix))
            : Command(c, "SELECT key FROM kv WHERE key >= @p AND key < @q ORDER BY key", ("@p", prefix), ("@q", prefix + "\uffff"));
        using var reader = cmd.ExecuteReader();
        var list = new List<string>();
        while (reader.Read()) list.Add(reader.GetString(0));
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
}
