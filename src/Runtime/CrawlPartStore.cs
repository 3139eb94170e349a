using static Pipeline.Runtime.LedgerSql;

namespace Pipeline.Runtime;

/// <summary>
/// A crawl split by host into partitions, each a job that may run on another host: a partition hands the URLs it finds
/// on another partition's hosts to that partition here, and says here when it has run out of work. The crawl is over
/// when one read finds every partition idle having taken every URL handed to it: no partition can then make work again.
/// The parts also share the crawl's page limit here, a page at a time.
/// </summary>
public sealed class CrawlPartStore(Ledger db)
{
    /// <summary>Hands URLs (with their depth) to partition <paramref name="part"/>; one transaction, each URL once.</summary>
    public void HandOffUrls(string runId, int part, IReadOnlyCollection<(string Url, int Depth)> urls)
    {
        if (urls.Count == 0) return;
        using var c = db.Connect();
        using var tx = BeginWrite(c);
        foreach (var (url, depth) in urls)
            Execute(c, "INSERT INTO crawl_handoffs VALUES(@r, @p, @u, @d) ON CONFLICT DO NOTHING", ("@r", runId), ("@p", (long)part), ("@u", url), ("@d", (long)depth));
        tx.Commit();
    }

    /// <summary>Every URL handed to partition <paramref name="part"/> so far.</summary>
    public IReadOnlyList<(string Url, int Depth)> HandedOffUrls(string runId, int part)
    {
        using var c = db.Connect();
        using var cmd = Command(c, "SELECT url, depth FROM crawl_handoffs WHERE run_id=@r AND part=@p", ("@r", runId), ("@p", (long)part));
        using var reader = cmd.ExecuteReader();
        var list = new List<(string, int)>();
        while (reader.Read()) list.Add((reader.GetString(0), Convert.ToInt32(reader.GetValue(1))));
        return list;
    }

    /// <summary>
    /// Records partition <paramref name="part"/> as idle after taking <paramref name="taken"/> handed-off URLs, or
    /// as working (null).
    /// </summary>
    public void SetIdle(string runId, int part, long? taken)
    {
        using var c = db.Connect();
        Execute(c, "INSERT INTO crawl_parts VALUES(@r, @p, @t, 0) ON CONFLICT(run_id, part) DO UPDATE SET idle_after=excluded.idle_after",
            ("@r", runId), ("@p", (long)part), ("@t", taken ?? -1L));
    }

    /// <summary>
    /// Sets the pages partition <paramref name="part"/> counts against the crawl's limit: at its (re)start, the pages
    /// it has committed (what a killed process had taken but not committed is free again).
    /// </summary>
    public void SetPages(string runId, int part, long pages)
    {
        using var c = db.Connect();
        Execute(c, "INSERT INTO crawl_parts VALUES(@r, @p, -1, @n) ON CONFLICT(run_id, part) DO UPDATE SET pages=excluded.pages",
            ("@r", runId), ("@p", (long)part), ("@n", pages));
    }

    /// <summary>Takes one page of the crawl's limit <paramref name="maxPages"/> for partition <paramref name="part"/>; false when all are taken.</summary>
    public bool TakePage(string runId, int part, long maxPages)
    {
        using var c = db.Connect();
        using var tx = BeginWrite(c);
        // Read and update as one: SQLite's immediate transaction already excludes other writers; PostgreSQL needs the lock.
        if (db.IsPostgres) Execute(c, "LOCK TABLE crawl_parts IN SHARE ROW EXCLUSIVE MODE");
        var taken = Convert.ToInt64(Scalar(c, "SELECT COALESCE(SUM(pages), 0) FROM crawl_parts WHERE run_id=@r", ("@r", runId)));
        if (taken >= maxPages) return false;
        Execute(c, "INSERT INTO crawl_parts VALUES(@r, @p, -1, 1) ON CONFLICT(run_id, part) DO UPDATE SET pages=crawl_parts.pages + 1",
            ("@r", runId), ("@p", (long)part));
        tx.Commit();
        return true;
    }

    /// <summary>Whether all <paramref name="parts"/> partitions are idle and each has taken every URL handed to it (one statement).</summary>
    public bool Quiescent(string runId, int parts)
    {
        using var c = db.Connect();
        var idle = Convert.ToInt64(Scalar(c, """
            SELECT COUNT(*) FROM crawl_parts p WHERE p.run_id=@r AND p.idle_after >= 0
              AND p.idle_after = (SELECT COUNT(*) FROM crawl_handoffs h WHERE h.run_id=p.run_id AND h.part=p.part)
            """, ("@r", runId)));
        return idle == parts;
    }
}
