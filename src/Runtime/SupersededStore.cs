using static Pipeline.Runtime.LedgerSql;

namespace Pipeline.Runtime;

/// <summary>
/// Documents kept by a stage and later found to be duplicates of a document with a smaller id that arrived after them
/// (exact or near), per run. Deciding by the smallest id makes the kept copy independent of arrival order; what was
/// already written out is left in its shard and skipped here by tokenization, which starts after every shard is
/// decided.
/// </summary>
public sealed class SupersededStore(Ledger db)
{
    /// <summary>Records each (document, the smaller duplicate that supersedes it); a document recorded before keeps its first record.</summary>
    public void Add(string runId, string reason, IReadOnlyCollection<(string Document, string By)> documents)
    {
        if (documents.Count == 0) return;
        using var c = db.Connect();
        using var tx = BeginWrite(c);
        foreach (var (document, by) in documents.OrderBy(d => d.Document, StringComparer.Ordinal))
            Execute(c, "INSERT INTO run_superseded VALUES(@r, @d, @b, @why) ON CONFLICT DO NOTHING", ("@r", runId), ("@d", document), ("@b", by), ("@why", reason));
        tx.Commit();
    }

    /// <summary>The run's superseded documents.</summary>
    public HashSet<string> Ids(string runId)
    {
        using var c = db.Connect();
        using var cmd = Command(c, "SELECT doc_id FROM run_superseded WHERE run_id=@r", ("@r", runId));
        using var reader = cmd.ExecuteReader();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        while (reader.Read()) ids.Add(reader.GetString(0));
        return ids;
    }
}
