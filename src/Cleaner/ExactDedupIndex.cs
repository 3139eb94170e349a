using System.IO.Hashing;
using System.Text;
using Microsoft.Data.Sqlite;

namespace Pipeline.Cleaner;

/// <summary>
/// Persistent set of 64-bit hashes of normalized text, so a document already accepted in an earlier shard or run is
/// dropped. Hashes of one shard are added in one transaction together with nothing else, after the shard is
/// written; a crash before that simply reprocesses the shard against the same index.
/// </summary>
public sealed class ExactDedupIndex : IDisposable
{
    private readonly SqliteConnection _db;

    public ExactDedupIndex(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, DefaultTimeout = 30 }.ToString());
        _db.Open();
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS seen(hash INTEGER PRIMARY KEY, shard TEXT) WITHOUT ROWID;";
        cmd.ExecuteNonQuery();
    }

    public static long HashOf(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var c in text)
            if (char.IsLetterOrDigit(c)) builder.Append(char.ToLowerInvariant(c));
        return (long)XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(builder.ToString()));
    }

    /// <summary>The shard that first had this hash, or null.</summary>
    public string? SeenIn(long hash)
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT shard FROM seen WHERE hash=$h";
        cmd.Parameters.AddWithValue("$h", hash);
        return cmd.ExecuteScalar() as string;
    }

    public void AddAll(IEnumerable<long> hashes, string shard)
    {
        using var tx = _db.BeginTransaction();
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "INSERT OR IGNORE INTO seen VALUES($h, $s)";
        var h = cmd.Parameters.Add("$h", SqliteType.Integer);
        cmd.Parameters.AddWithValue("$s", shard);
        foreach (var hash in hashes)
        {
            h.Value = hash;
            cmd.ExecuteNonQuery();
        }
        tx.Commit();
    }

    public void Dispose() => _db.Dispose();
}
