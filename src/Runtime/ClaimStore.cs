using static Pipeline.Runtime.LedgerSql;

namespace Pipeline.Runtime;

/// <summary>What a set of exact-dedup claims decided (<see cref="ClaimStore.Claim"/>).</summary>
/// <param name="Kept">Whether each claiming document holds its hash (is kept).</param>
/// <param name="Holders">The document holding each claimed hash afterwards: the smallest id that ever claimed it.</param>
/// <param name="Displaced">Earlier holders that a smaller id took over from: documents kept before that are now duplicates.</param>
public sealed record ExactClaims(bool[] Kept, string[] Holders, IReadOnlyList<(string Document, string By)> Displaced);

/// <summary>
/// Exact-dedup claims of a run in the ledger: each hash of normalized text is held by the smallest document id that
/// has it, whichever cleaner saw which copy first, so the copy kept does not depend on crawl timing.
/// </summary>
public sealed class ClaimStore(Ledger db)
{
    private const int ClaimBatch = 500;

    /// <summary>
    /// Claims hash <c>hashes[i]</c> for document <c>ids[i]</c> of <paramref name="shard"/> in run <paramref name="runId"/>, in
    /// one transaction. A smaller id takes a hash over (the holder it displaces is returned); the same document claiming
    /// again from the same shard (a shard redone after a crash) finds its own claim; the same document from another
    /// shard (a page stored twice) loses to the copy that claimed first. Claimants of one run take turns (a
    /// transaction-scoped lock), so two hosts claiming overlapping sets never deadlock.
    /// </summary>
    public ExactClaims Claim(string runId, IReadOnlyList<long> hashes, IReadOnlyList<string> ids, string shard)
    {
        if (hashes.Count != ids.Count) throw new ArgumentException("one id per hash", nameof(ids));
        if (hashes.Count == 0) return new([], [], []);
        // The smallest id of this batch per hash is its candidate; the others lose to it here.
        var candidates = new SortedDictionary<long, string>();
        for (var i = 0; i < hashes.Count; i++)
            if (!candidates.TryGetValue(hashes[i], out var held) || string.CompareOrdinal(ids[i], held) < 0) candidates[hashes[i]] = ids[i];
        var holders = new Dictionary<long, (string Id, string Shard)>(candidates.Count);
        var displaced = new List<(string, string)>();
        using var c = db.Connect();
        using var tx = BeginWrite(c);
        // One claimant of a run at a time, as SQLite's write lock (BEGIN IMMEDIATE) makes it there: read, compare and
        // update cannot interleave, and no two claimants wait for each other's rows (row locks deadlocked).
        if (db.IsPostgres) Execute(c, "SELECT pg_advisory_xact_lock(727002, hashtext(@run))", ("@run", runId));
        foreach (var batch in candidates.Chunk(ClaimBatch))
        {
            var names = batch.Select((_, i) => $"@h{i}").ToList();
            var parameters = batch.Select((claim, i) => (names[i], (object?)claim.Key)).ToList();
            Execute(c, $"INSERT INTO run_exact_holders(run_id, hash, doc_id, shard_id) VALUES {string.Join(", ", batch.Select((_, i) => $"(@run, {names[i]}, @d{i}, @shard)"))} ON CONFLICT(run_id, hash) DO NOTHING",
                [.. parameters, .. batch.Select((claim, i) => ($"@d{i}", (object?)claim.Value)), ("@run", runId), ("@shard", shard)]);
            using (var select = Command(c, $"SELECT hash, doc_id, shard_id FROM run_exact_holders WHERE run_id = @run AND hash IN ({string.Join(", ", names)})", [.. parameters, ("@run", runId)]))
            using (var reader = select.ExecuteReader())
                while (reader.Read()) holders[Convert.ToInt64(reader.GetValue(0))] = (reader.GetString(1), reader.GetString(2));
            foreach (var (hash, id) in batch)
            {
                if (string.CompareOrdinal(id, holders[hash].Id) >= 0) continue;
                displaced.Add((holders[hash].Id, id));
                holders[hash] = (id, shard);
                Execute(c, "UPDATE run_exact_holders SET doc_id = @d, shard_id = @shard WHERE run_id = @run AND hash = @h", ("@d", id), ("@shard", shard), ("@run", runId), ("@h", hash));
            }
        }
        tx.Commit();
        // A document appearing twice in the batch is kept once.
        var taken = new HashSet<long>();
        var kept = hashes.Select((hash, i) => holders[hash] == (ids[i], shard) && taken.Add(hash)).ToArray();
        return new(kept, hashes.Select(hash => holders[hash].Id).ToArray(), displaced);
    }
}
