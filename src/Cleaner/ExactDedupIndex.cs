using System.IO.Hashing;
using System.Text;
using Microsoft.Data.Sqlite;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Cleaner;

/// <summary>
/// Where exact-dedup decisions are made: each 64-bit hash of normalized text is held by the shard that claimed it
/// first, so a document already accepted in another shard of the run is dropped. Each run has claims of its own.
/// </summary>
public interface IExactDedupClaims : IDisposable
{
    /// <summary>
    /// Claims each hash for <paramref name="shard"/> unless another shard holds it, and returns the holder of each
    /// (this shard when the claim took), in one transaction: cleaners in several processes decide each hash once
    /// (first claim wins), and a shard done again after a crash finds its own claims and keeps its documents.
    /// </summary>
    string[] Claim(IReadOnlyList<long> hashes, string shard);
}

/// <summary>The claims of cleaners on several hosts: a table in the shared (PostgreSQL) ledger.</summary>
public sealed class LedgerExactDedupClaims(Ledger ledger, string runId) : IExactDedupClaims
{
    public string[] Claim(IReadOnlyList<long> hashes, string shard) => ledger.Claims.Claim(runId, hashes, shard);

    public void Dispose()
    {
    }
}

/// <summary>
/// The claims of one run in a SQLite file (WAL) in the data root (<see cref="PathOf"/>): the cleaners of one host (or of
/// a shared file system with working locks) share it.
/// </summary>
public sealed class ExactDedupIndex : IExactDedupClaims
{
    private readonly SqliteConnection _db;

    public ExactDedupIndex(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, DefaultTimeout = 30 }.ToString());
        _db.Open();
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; CREATE TABLE IF NOT EXISTS seen(hash INTEGER PRIMARY KEY, shard TEXT) WITHOUT ROWID;";
        cmd.ExecuteNonQuery();
    }

    public static string PathOf(ShardStore store, string runId) => store.Resolve(RunArtifacts.IndexFolder(runId) + "/exact-dedup.db");

    public static long HashOf(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var c in text)
            if (char.IsLetterOrDigit(c)) builder.Append(char.ToLowerInvariant(c));
        return (long)XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(builder.ToString()));
    }

    public string[] Claim(IReadOnlyList<long> hashes, string shard)
    {
        var holders = new string[hashes.Count];
        if (hashes.Count == 0) return holders;
        using var tx = _db.BeginTransaction(deferred: false); // BEGIN IMMEDIATE: the write lock before the first read
        using var insert = _db.CreateCommand();
        insert.CommandText = "INSERT OR IGNORE INTO seen VALUES($h, $s)";
        var h = insert.Parameters.Add("$h", SqliteType.Integer);
        insert.Parameters.AddWithValue("$s", shard);
        using var select = _db.CreateCommand();
        select.CommandText = "SELECT shard FROM seen WHERE hash=$h";
        var q = select.Parameters.Add("$h", SqliteType.Integer);
        for (var i = 0; i < hashes.Count; i++)
        {
            h.Value = q.Value = hashes[i];
            insert.ExecuteNonQuery();
            holders[i] = (string)select.ExecuteScalar()!;
        }
        tx.Commit();
        return holders;
    }

    public void Dispose() => _db.Dispose();
}
