using static Pipeline.Runtime.LedgerSql;

namespace Pipeline.Runtime;

/// <summary>Leases: one holder at a time for a name (a run's dedup index), expiring when a holder dies.</summary>
public sealed class LeaseStore(Ledger db)
{
    /// <summary>
    /// Takes or renews the lease <paramref name="name"/> for <paramref name="holder"/> until now + <paramref name="ttl"/>,
    /// in one statement: it succeeds when nobody holds it, when the holder already does, or when the last holder's
    /// lease has expired (a dead holder). False while another holder's lease runs.
    /// </summary>
    public bool TryAcquire(string name, string holder, TimeSpan ttl)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        using var c = db.Connect();
        return Execute(c, """
            INSERT INTO leases VALUES(@n, @h, @until)
            ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, expires=excluded.expires
            WHERE leases.holder=excluded.holder OR leases.expires < @now
            """, ("@n", name), ("@h", holder), ("@until", now + (long)ttl.TotalMilliseconds), ("@now", now)) == 1;
    }

    /// <summary>Gives the lease up if <paramref name="holder"/> holds it, so a waiting host need not wait for it to expire.</summary>
    public void Release(string name, string holder)
    {
        using var c = db.Connect();
        Execute(c, "DELETE FROM leases WHERE name=@n AND holder=@h", ("@n", name), ("@h", holder));
    }
}
