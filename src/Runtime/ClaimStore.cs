using Microsoft.Data.Sqlite;
using static Pipeline.Runtime.LedgerSql;

namespace Pipeline.Runtime;

/// <summary>Exact-dedup claims of a run in a shared (PostgreSQL) ledger: the first clean shard to keep a text holds it.</summary>
public sealed class ClaimStore(Ledger db)
{
    private const int ClaimBatch = 500;

    /// <summary>
    /// Claims each hash for <paramref name="holder"/> in run <paramref name="runId"/> unless another holder has it, and returns the holder of each
    /// (<paramref name="holder"/> where the claim took): first claim wins across every host on this ledger, and a
    /// holder that claims again (a shard redone after a crash) finds its own claims. One transaction; the hashes are
    /// inserted in ascending order, so two hosts claiming overlapping sets wait for each other instead of deadlocking.
    /// </summary>
    public string[] Claim(string runId, IReadOnlyList<long> hashes, string holder)
    {
        var holders = new Dictionary<long, string>(hashes.Count);
        if (hashes.Count == 0) return [];
        using var c = db.Connect();
        using var tx = c is SqliteConnection sqlite ? sqlite.BeginTransaction(deferred: false) : c.BeginTransaction();
        foreach (var batch in hashes.Distinct().Order().Chunk(ClaimBatch))
        {
            var names = batch.Select((_, i) => $"@h{i}").ToList();
            var parameters = batch.Select((hash, i) => (names[i], (object?)hash)).ToList();
            Execute(c, $"INSERT INTO run_exact_claims(run_id, hash, holder) VALUES {string.Join(", ", names.Select(n => $"(@run, {n}, @holder)"))} ON CONFLICT(run_id, hash) DO NOTHING",
                [.. parameters, ("@run", runId), ("@holder", holder)]);
            using var select = Command(c, $"SELECT hash, holder FROM run_exact_claims WHERE run_id = @run AND hash IN ({string.Join(", ", names)})", [.. parameters, ("@run", runId)]);
            using var reader = select.ExecuteReader();
            while (reader.Read()) holders[Convert.ToInt64(reader.GetValue(0))] = reader.GetString(1);
        }
        tx.Commit();
        return hashes.Select(hash => holders[hash]).ToArray();
    }
}
