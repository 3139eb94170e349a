using Microsoft.Data.Sqlite;
using Pipeline.Contracts.V1;

namespace Pipeline.Crawler;

/// <summary>
/// The persisted crawl frontier: every URL seen (normalized, so each is fetched once), its depth and state, and the
/// shards already committed. A page counts as done only when the shard holding it is committed, in the same
/// transaction, so a crawl killed at any point resumes without refetching written pages or losing any.
/// </summary>
public sealed class Frontier : IDisposable
{
    private readonly SqliteConnection _db;
    private readonly Lock _gate = new();
    private long _seq;

    public Frontier(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _db.Open();
        Exec("""
            PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
            CREATE TABLE IF NOT EXISTS urls(url TEXT PRIMARY KEY, depth INTEGER, state TEXT, reason TEXT, shard TEXT, seq INTEGER, attempts INTEGER NOT NULL DEFAULT 0);
            CREATE INDEX IF NOT EXISTS urls_queued ON urls(state, seq);
            CREATE TABLE IF NOT EXISTS shards(seq INTEGER PRIMARY KEY, shard_id TEXT, uri TEXT, sha256 TEXT, rows INTEGER, bytes INTEGER, config_hash TEXT, run_id TEXT);
            CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
            """);
        // Frontiers written before attempts were counted get the column (0: every failure so far was a first).
        using (var columns = _db.CreateCommand())
        {
            columns.CommandText = "SELECT COUNT(*) FROM pragma_table_info('urls') WHERE name='attempts'";
            if ((long)columns.ExecuteScalar()! == 0) Exec("ALTER TABLE urls ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0");
        }
        using var cmd = _db.CreateCommand();
        cmd.CommandText = "SELECT COALESCE(MAX(seq), 0) FROM urls";
        _seq = (long)cmd.ExecuteScalar()!;
    }

    /// <summary>Adds URLs not seen before; returns how many were new.</summary>
    public int Add(IEnumerable<(string Url, int Depth)> urls)
    {
        lock (_gate)
        {
            using var tx = _db.BeginTransaction();
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "INSERT OR IGNORE INTO urls(url, depth, state, seq) VALUES($u, $d, 'queued', $s)";
            var u = cmd.Parameters.Add("$u", SqliteType.Text);
            var d = cmd.Parameters.Add("$d", SqliteType.Integer);
            var s = cmd.Parameters.Add("$s", SqliteType.Integer);
            var added = 0;
            foreach (var (url, depth) in urls)
            {
                u.Value = url;
                d.Value = depth;
                s.Value = _seq + 1;
                if (cmd.ExecuteNonQuery() > 0)
                {
                    _seq++;
                    added++;
                }
            }
            tx.Commit();
            return added;
        }
    }

    /// <summary>Records URLs that will never be fetched (a scheme other than http(s), a refused robots.txt), with the reason.</summary>
    public void AddSkipped(IEnumerable<string> urls, string reason)
    {
        lock (_gate)
        {
            using var tx = _db.BeginTransaction();
            foreach (var url in urls)
            {
                // A hostile page can offer arbitrarily long URLs; the record only needs to say what was skipped.
                var key = url.Length > 2000 ? url[..2000] : url;
                _seq++;
                Exec("INSERT OR IGNORE INTO urls(url, depth, state, reason, seq) VALUES($u, 0, 'skipped', $r, $s)", ("$u", key), ("$r", reason), ("$s", _seq));
            }
            tx.Commit();
        }
    }

    public IReadOnlyList<(string Url, int Depth)> TakeQueued(int limit, IReadOnlySet<string> exclude)
    {
        lock (_gate)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT url, depth FROM urls WHERE state='queued' ORDER BY seq LIMIT $n";
            cmd.Parameters.AddWithValue("$n", limit + exclude.Count);
            using var reader = cmd.ExecuteReader();
            var list = new List<(string, int)>();
            while (reader.Read() && list.Count < limit)
            {
                var url = reader.GetString(0);
                if (!exclude.Contains(url)) list.Add((url, reader.GetInt32(1)));
            }
            return list;
        }
    }

    /// <summary>Marks a URL as finished without a page (failed or skipped), with the reason; a failure counts an attempt.</summary>
    public void MarkTerminal(string url, string state, string reason)
    {
        lock (_gate)
        {
            Exec("UPDATE urls SET state=$s, reason=$r, attempts=attempts + (CASE WHEN $s='failed' THEN 1 ELSE 0 END) WHERE url=$u",
                ("$s", state), ("$r", reason), ("$u", url));
        }
    }

    /// <summary>Puts URLs that failed transiently, with fewer than <paramref name="maxAttempts"/> attempts, back in the queue; returns how many.</summary>
    public int RequeueFailed(int maxAttempts)
    {
        lock (_gate)
        {
            using var cmd = _db.CreateCommand();
            // Only what may pass another time: timeouts, connection errors, 429 and 5xx; a 404 stays a 404.
            cmd.CommandText = "UPDATE urls SET state='queued', reason=NULL WHERE state='failed' AND attempts < $max " +
                "AND (reason = 'timeout' OR reason LIKE 'unreachable%' OR reason IN ('http-429', 'http-500', 'http-502', 'http-503', 'http-504'))";
            cmd.Parameters.AddWithValue("$max", maxAttempts);
            return cmd.ExecuteNonQuery();
        }
    }

    /// <summary>Records a written shard and marks its pages done, atomically.</summary>
    public void CommitShard(long seq, ShardRef shard, IEnumerable<string> urls)
    {
        lock (_gate)
        {
            using var tx = _db.BeginTransaction();
            Exec("INSERT OR REPLACE INTO shards VALUES($q, $id, $uri, $sha, $rows, $bytes, $cfg, $run)",
                ("$q", seq), ("$id", shard.ShardId), ("$uri", shard.Uri), ("$sha", shard.Sha256), ("$rows", shard.Rows), ("$bytes", shard.Bytes),
                ("$cfg", shard.ConfigHash), ("$run", shard.RunId));
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "UPDATE urls SET state='done', shard=$id WHERE url=$u";
            cmd.Parameters.AddWithValue("$id", shard.ShardId);
            var u = cmd.Parameters.Add("$u", SqliteType.Text);
            foreach (var url in urls)
            {
                u.Value = url;
                cmd.ExecuteNonQuery();
            }
            tx.Commit();
        }
    }

    public IReadOnlyList<(long Seq, ShardRef Shard)> CommittedShards()
    {
        lock (_gate)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT seq, shard_id, uri, sha256, rows, bytes, config_hash, run_id FROM shards ORDER BY seq";
            using var reader = cmd.ExecuteReader();
            var list = new List<(long, ShardRef)>();
            while (reader.Read())
                list.Add((reader.GetInt64(0), new ShardRef(reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetInt64(4),
                    reader.GetInt64(5), Contracts.StageNames.Crawl, reader.GetString(6), [], reader.GetString(7))));
            return list;
        }
    }

    public Dictionary<string, int> CountByState()
    {
        lock (_gate)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT state, COUNT(*) FROM urls GROUP BY state";
            using var reader = cmd.ExecuteReader();
            var counts = new Dictionary<string, int>();
            while (reader.Read()) counts[reader.GetString(0)] = reader.GetInt32(1);
            return counts;
        }
    }

    public Dictionary<string, int> CountByReason()
    {
        lock (_gate)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT reason, COUNT(*) FROM urls WHERE reason IS NOT NULL GROUP BY reason";
            using var reader = cmd.ExecuteReader();
            var counts = new Dictionary<string, int>();
            while (reader.Read())
            {
                // Group by the reason's kind ("http-404", "robots", ...), not its full message.
                var kind = reader.GetString(0).Split(':')[0];
                counts[kind] = counts.GetValueOrDefault(kind) + reader.GetInt32(1);
            }
            return counts;
        }
    }

    /// <summary>Writes a consistent copy of the frontier to <paramref name="path"/> (a new file), for another host to resume from.</summary>
    public void SnapshotTo(string path)
    {
        lock (_gate)
        {
            Exec("VACUUM INTO $p", ("$p", path));
        }
    }

    public string? GetMeta(string key)
    {
        lock (_gate)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT value FROM meta WHERE key=$k";
            cmd.Parameters.AddWithValue("$k", key);
            return cmd.ExecuteScalar() as string;
        }
    }

    public void SetMeta(string key, string value)
    {
        lock (_gate)
        {
            Exec("INSERT OR REPLACE INTO meta VALUES($k, $v)", ("$k", key), ("$v", value));
        }
    }

    private void Exec(string sql, params (string, object?)[] parameters)
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters) cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        cmd.ExecuteNonQuery();
    }

    public void Dispose() => _db.Dispose();
}
