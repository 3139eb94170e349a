using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using Microsoft.Data.Sqlite;

namespace Pipeline.Dedup;

/// <summary>
/// The persisted LSH index. Band keys go to an append-only log (<c>lsh.bands</c>: 12-byte records of key and
/// document) and, in memory, to a <see cref="BandTable"/> rebuilt from the log on first use; the kept documents
/// (id, shard, signature) are rows in SQLite (<c>lsh.db</c>), appended in id order. Inserting and looking up cost
/// the same however large the index is (no B-tree of random keys). The log is synced before the SQLite transaction
/// that records its new length commits, and anything past the committed length is cut off at open, so a crash
/// mid-shard leaves no trace; a log shorter than committed is a clear error.
/// Sizes per kept document: see docs/dedup.md.
/// </summary>
public sealed class LshIndex : IDisposable
{
    private const int RecordBytes = 12;
    private readonly SqliteConnection _db;
    private readonly string _path;
    private readonly string _logPath;
    private readonly int _bands;
    private readonly int _rows;
    private readonly SqliteCommand _signature;
    private BandTable? _table;
    private FileStream? _log;
    private ulong[] _live = new ulong[1024]; // one bit per document id still in the index (RemoveShard clears)
    private long _generation; // the index's change count as this instance last read or wrote it

    public LshIndex(string path, int bands, int rows)
    {
        _bands = bands;
        _rows = rows;
        _path = path;
        _logPath = Path.ChangeExtension(path, ".bands");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, DefaultTimeout = 30 }.ToString());
        try
        {
            _db.Open();
            Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" +
                 "CREATE TABLE IF NOT EXISTS docs(doc INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT, shard TEXT, signature BLOB);" +
                 "CREATE TABLE IF NOT EXISTS shards(shard TEXT PRIMARY KEY, first INTEGER, last INTEGER);" +
                 "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);");
            var shape = $"{bands}x{rows}/minhash-v{MinHasher.Scheme}/band-log-v1";
            var stored = Scalar("SELECT value FROM meta WHERE key='shape'") as string;
            if (stored is null) Exec($"INSERT INTO meta VALUES('shape', '{shape}')");
            else if (stored != shape)
                throw new InvalidDataException($"LSH index '{path}' was built as {stored}, not {shape}; rebuild it with 'pipeline dedup --rebuild-index' (docs/dedup.md)");
            Scalar("SELECT COUNT(*) FROM shards");
        }
        catch (SqliteException e)
        {
            _db.Dispose();
            throw new InvalidDataException($"LSH index '{path}' is corrupt ({e.Message}); delete it and rebuild with 'pipeline dedup --rebuild-index' (docs/dedup.md)", e);
        }
        _signature = _db.CreateCommand();
        _signature.CommandText = "SELECT id, signature FROM docs WHERE doc=$d";
        _signature.Parameters.Add("$d", SqliteType.Integer);
        _generation = StoredGeneration;
    }

    /// <summary>
    /// Another instance (another process) changed the index since this one opened or last wrote it: its in-memory
    /// band table and log position are out of date, so it must be reopened before its next use.
    /// </summary>
    public bool ChangedElsewhere => StoredGeneration != _generation;

    private long StoredGeneration => Scalar("SELECT value FROM meta WHERE key='generation'") is string text ? long.Parse(text) : 0;

    // Inside the transaction of each change, so the count commits with it.
    private void CountChange()
    {
        _generation = StoredGeneration + 1;
        Exec($"INSERT OR REPLACE INTO meta VALUES('generation', '{_generation}')");
    }

    /// <summary>The files that make up the index at <paramref name="path"/> (for deleting it before a rebuild).</summary>
    public static IEnumerable<string> Files(string path) => [path, path + "-wal", path + "-shm", Path.ChangeExtension(path, ".bands")];

    public long Count => (long)Scalar("SELECT COUNT(*) FROM docs")!;

    /// <summary>Bytes on disk (SQLite and band log) and in memory (band table, once loaded).</summary>
    public (long Disk, long Memory) Size =>
        (Files(_path).Where(File.Exists).Sum(f => new FileInfo(f).Length), _table?.Bytes ?? 0);

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

    /// <summary>Indexed documents sharing at least one band with the signature, each once, in band order.</summary>
    public IEnumerable<long> Candidates(long[] keys)
    {
        var table = EnsureLoaded();
        var found = new List<uint>();
        foreach (var key in keys) table.Find((ulong)key, found);
        var seen = new HashSet<uint>();
        foreach (var doc in found)
        {
            if (IsLive(doc) && seen.Add(doc)) yield return doc;
        }
    }

    public (string Id, uint[] Signature) Get(long doc)
    {
        _signature.Parameters[0].Value = doc;
        using var reader = _signature.ExecuteReader();
        if (!reader.Read()) throw new InvalidDataException($"LSH index: document {doc} is in the band log but not in the index database; rebuild the index");
        var blob = (byte[])reader.GetValue(1);
        return (reader.GetString(0), MemoryMarshal.Cast<byte, uint>(blob).ToArray());
    }

    /// <summary>Adds a shard's kept documents: all or nothing.</summary>
    public void AddAll(IEnumerable<(string Id, uint[] Signature, long[] Keys)> documents, string shard)
    {
        var table = EnsureLoaded();
        using var tx = _db.BeginTransaction();
        using var insertDoc = _db.CreateCommand();
        insertDoc.CommandText = "INSERT INTO docs(id, shard, signature) VALUES($id, $shard, $sig) RETURNING doc";
        var id = insertDoc.Parameters.Add("$id", SqliteType.Text);
        insertDoc.Parameters.AddWithValue("$shard", shard);
        var sig = insertDoc.Parameters.Add("$sig", SqliteType.Blob);
        var added = new List<(uint Doc, long[] Keys)>();
        foreach (var document in documents)
        {
            id.Value = document.Id;
            sig.Value = MemoryMarshal.AsBytes(document.Signature.AsSpan()).ToArray();
            added.Add((checked((uint)(long)insertDoc.ExecuteScalar()!), document.Keys));
        }
        if (added.Count == 0) return;
        using (var range = _db.CreateCommand())
        {
            range.CommandText = "INSERT OR REPLACE INTO shards VALUES($s, $first, $last)";
            range.Parameters.AddWithValue("$s", shard);
            range.Parameters.AddWithValue("$first", (long)added[0].Doc);
            range.Parameters.AddWithValue("$last", (long)added[^1].Doc);
            range.ExecuteNonQuery();
        }
        // The band records reach the disk before the documents commit: a crash in between leaves records past the
        // last committed document, which the next open cuts off.
        var buffer = new byte[added.Count * _bands * RecordBytes];
        var at = 0;
        foreach (var (doc, keys) in added)
        {
            foreach (var key in keys)
            {
                BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(at), key);
                BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(at + 8), doc);
                at += RecordBytes;
            }
        }
        _log!.Write(buffer);
        _log.Flush(flushToDisk: true);
        using (var length = _db.CreateCommand())
        {
            length.CommandText = "INSERT OR REPLACE INTO meta VALUES('log_length', $n)";
            length.Parameters.AddWithValue("$n", _log.Length.ToString());
            length.ExecuteNonQuery();
        }
        CountChange();
        tx.Commit();
        foreach (var (doc, keys) in added)
        {
            SetLive(doc, true);
            foreach (var key in keys) table.Add((ulong)key, doc);
        }
    }

    /// <summary>Forgets what an earlier, interrupted attempt at a shard added, so a redo sees the same index.</summary>
    public void RemoveShard(string shard)
    {
        using var find = _db.CreateCommand();
        find.CommandText = "SELECT first, last FROM shards WHERE shard=$s";
        find.Parameters.AddWithValue("$s", shard);
        using (var reader = find.ExecuteReader())
        {
            if (!reader.Read()) return;
            var (first, last) = (reader.GetInt64(0), reader.GetInt64(1));
            reader.Close();
            using var tx = _db.BeginTransaction();
            using var delete = _db.CreateCommand();
            delete.CommandText = "DELETE FROM docs WHERE doc BETWEEN $first AND $last; DELETE FROM shards WHERE shard=$s;";
            delete.Parameters.AddWithValue("$first", first);
            delete.Parameters.AddWithValue("$last", last);
            delete.Parameters.AddWithValue("$s", shard);
            delete.ExecuteNonQuery();
            CountChange();
            tx.Commit();
            // Their band records stay in the log and the table, dead: lookups skip documents that are not live.
            for (var doc = first; doc <= last; doc++) SetLive((uint)doc, false);
        }
    }

    /// <summary>
    /// Loads the band log into memory on first lookup or insert (so opening the index to count it or to remove a
    /// shard costs nothing), cutting off records of documents that never committed.
    /// </summary>
    private BandTable EnsureLoaded()
    {
        if (_table is not null) return _table;
        var committed = Scalar("SELECT value FROM meta WHERE key='log_length'") is string text ? long.Parse(text) : 0;
        using (var docs = _db.CreateCommand())
        {
            docs.CommandText = "SELECT doc FROM docs";
            using var reader = docs.ExecuteReader();
            while (reader.Read()) SetLive((uint)reader.GetInt64(0), true);
        }
        var log = new FileStream(_logPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 1 << 16);
        if (log.Length < committed)
        {
            var length = log.Length;
            log.Dispose();
            throw new InvalidDataException($"LSH band log '{_logPath}' has {length:N0} bytes but the index committed {committed:N0}; " +
                                           "it was truncated or replaced: delete the index and rebuild it with 'pipeline dedup --rebuild-index' (docs/dedup.md)");
        }
        var table = new BandTable();
        var buffer = new byte[RecordBytes * 65536];
        for (long offset = 0; offset < committed;)
        {
            var read = log.Read(buffer, 0, (int)Math.Min(buffer.Length, committed - offset));
            for (var at = 0; at + RecordBytes <= read; at += RecordBytes)
            {
                var doc = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(at + 8));
                if (IsLive(doc)) table.Add(BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(at)), doc);
            }
            offset += read;
        }
        // Records past the committed length belong to a shard whose documents never committed.
        log.SetLength(committed);
        log.Position = committed;
        _log = log;
        return _table = table;
    }

    private bool IsLive(uint doc) => doc / 64 < (ulong)_live.Length && (_live[doc / 64] & (1UL << (int)(doc % 64))) != 0;

    private void SetLive(uint doc, bool live)
    {
        if (doc / 64 >= (ulong)_live.Length) Array.Resize(ref _live, Math.Max(_live.Length * 2, (int)(doc / 64) + 1));
        if (live) _live[doc / 64] |= 1UL << (int)(doc % 64);
        else _live[doc / 64] &= ~(1UL << (int)(doc % 64));
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
        _signature.Dispose();
        _log?.Dispose();
        _db.Dispose();
    }
}
