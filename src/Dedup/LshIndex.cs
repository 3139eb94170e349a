using System.IO.Hashing;
using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;

namespace Pipeline.Dedup;

/// <summary>
/// The persisted LSH index: one row per (band key) of every kept document and each kept document's signature, in
/// SQLite on disk, so memory stays bounded however large the corpus grows. About (bands x 16 + perms x 4 + 40)
/// bytes per document on disk; see docs/dedup.md.
/// </summary>
public sealed class LshIndex : IDisposable
{
    private readonly SqliteConnection _db;
    private readonly int _bands;
    private readonly int _rows;
    private readonly SqliteCommand _lookup;
    private readonly SqliteCommand _signature;
    // Which band keys may be in the index: one bit per key hash, set on insert and loaded at open. Most documents are
    // new, and their band keys all miss this bitmap, so they cost no SQLite lookup at all. A stale bit (after
    // RemoveShard) only costs a lookup. Fixed size, so memory stays bounded however large the index grows.
    private readonly ulong[] _filter;
    private bool _filterLoaded;

    public LshIndex(string path, int bands, int rows, int filterBits = 27)
    {
        _bands = bands;
        _rows = rows;
        _filter = new ulong[(1L << filterBits) / 64];
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, DefaultTimeout = 30 }.ToString());
        try
        {
            _db.Open();
            Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;" +
                 "CREATE TABLE IF NOT EXISTS bands(key INTEGER, doc INTEGER, PRIMARY KEY(key, doc)) WITHOUT ROWID;" +
                 "CREATE TABLE IF NOT EXISTS docs(doc INTEGER PRIMARY KEY, id TEXT, shard TEXT, signature BLOB);" +
                 "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);");
            var shape = $"{bands}x{rows}/minhash-v{MinHasher.Scheme}";
            var stored = Scalar("SELECT value FROM meta WHERE key='shape'") as string;
            if (stored is null) Exec($"INSERT INTO meta VALUES('shape', '{shape}')");
            else if (stored != shape)
                throw new InvalidDataException($"LSH index '{path}' was built with {stored} bands x rows, not {shape}; rebuild it (docs/dedup.md)");
            Scalar("SELECT COUNT(*) FROM docs");
        }
        catch (SqliteException e)
        {
            _db.Dispose();
            throw new InvalidDataException($"LSH index '{path}' is corrupt ({e.Message}); delete it and rebuild with 'pipeline dedup --rebuild-index' (docs/dedup.md)", e);
        }
        _lookup = _db.CreateCommand();
        _lookup.CommandText = "SELECT doc FROM bands WHERE key=$k";
        _lookup.Parameters.Add("$k", SqliteType.Integer);
        _signature = _db.CreateCommand();
        _signature.CommandText = "SELECT id, signature FROM docs WHERE doc=$d";
        _signature.Parameters.Add("$d", SqliteType.Integer);
    }

    // Loaded on first use, so opening the index only to count or to remove a shard does not scan every band key.
    private void EnsureFilter()
    {
        if (_filterLoaded) return;
        using var keys = _db.CreateCommand();
        keys.CommandText = "SELECT key FROM bands";
        using var reader = keys.ExecuteReader();
        while (reader.Read()) Mark(reader.GetInt64(0));
        _filterLoaded = true;
    }

    private (long Word, ulong Bit) Slot(long key)
    {
        var h = (ulong)key * 0x9E3779B97F4A7C15UL;
        var index = (long)(h >> 1) % ((long)_filter.Length * 64);
        return (index >> 6, 1UL << (int)(index & 63));
    }

    private void Mark(long key)
    {
        var (word, bit) = Slot(key);
        _filter[word] |= bit;
    }

    private bool MayContain(long key)
    {
        var (word, bit) = Slot(key);
        return (_filter[word] & bit) != 0;
    }

    public long Count => (long)Scalar("SELECT COUNT(*) FROM docs")!;

    public long[] BandKeys(uint[] signature)
    {
        var keys = new long[_bands];
        for (var b = 0; b < _bands; b++)
        {
            var span = MemoryMarshal.AsBytes(signature.AsSpan(b * _rows, _rows));
            keys[b] = (long)XxHash3.HashToUInt64(span, seed: b);
        }
        return keys;
    }

    /// <summary>Indexed documents sharing at least one band with the signature.</summary>
    public IEnumerable<long> Candidates(long[] keys)
    {
        EnsureFilter();
        var seen = new HashSet<long>();
        foreach (var key in keys)
        {
            if (!MayContain(key)) continue;
            _lookup.Parameters[0].Value = key;
            using var reader = _lookup.ExecuteReader();
            while (reader.Read())
            {
                var doc = reader.GetInt64(0);
                if (seen.Add(doc)) yield return doc;
            }
        }
    }

    public (string Id, uint[] Signature) Get(long doc)
    {
        _signature.Parameters[0].Value = doc;
        using var reader = _signature.ExecuteReader();
        reader.Read();
        var blob = (byte[])reader.GetValue(1);
        return (reader.GetString(0), MemoryMarshal.Cast<byte, uint>(blob).ToArray());
    }

    /// <summary>Adds a shard's kept documents in one transaction (all or nothing).</summary>
    public void AddAll(IEnumerable<(string Id, uint[] Signature, long[] Keys)> documents, string shard)
    {
        EnsureFilter();
        using var tx = _db.BeginTransaction();
        using var insertDoc = _db.CreateCommand();
        insertDoc.CommandText = "INSERT INTO docs(id, shard, signature) VALUES($id, $shard, $sig) RETURNING doc";
        var id = insertDoc.Parameters.Add("$id", SqliteType.Text);
        insertDoc.Parameters.AddWithValue("$shard", shard);
        var sig = insertDoc.Parameters.Add("$sig", SqliteType.Blob);
        // All of a document's band rows in one statement (one SQLite step instead of one per band).
        using var insertBands = _db.CreateCommand();
        insertBands.CommandText = "INSERT OR IGNORE INTO bands VALUES " + string.Join(',', Enumerable.Range(0, _bands).Select(b => $"($k{b}, $d)"));
        var k = Enumerable.Range(0, _bands).Select(b => insertBands.Parameters.Add($"$k{b}", SqliteType.Integer)).ToArray();
        var d = insertBands.Parameters.Add("$d", SqliteType.Integer);
        foreach (var document in documents)
        {
            id.Value = document.Id;
            sig.Value = MemoryMarshal.AsBytes(document.Signature.AsSpan()).ToArray();
            var doc = (long)insertDoc.ExecuteScalar()!;
            d.Value = doc;
            for (var b = 0; b < _bands; b++)
            {
                k[b].Value = document.Keys[b];
                Mark(document.Keys[b]);
            }
            insertBands.ExecuteNonQuery();
        }
        tx.Commit();
    }

    /// <summary>Forgets what an earlier, interrupted attempt at a shard added, so a redo sees the same index.</summary>
    public void RemoveShard(string shard)
    {
        using var tx = _db.BeginTransaction();
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "DELETE FROM bands WHERE doc IN (SELECT doc FROM docs WHERE shard=$s); DELETE FROM docs WHERE shard=$s;";
        cmd.Parameters.AddWithValue("$s", shard);
        cmd.ExecuteNonQuery();
        tx.Commit();
    }

    private void Exec(string sql)
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    private object? Scalar(string sql)
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }

    public void Dispose()
    {
        _lookup.Dispose();
        _signature.Dispose();
        _db.Dispose();
    }
}
