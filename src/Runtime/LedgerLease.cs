namespace Pipeline.Runtime;

/// <summary>
/// A named lease in the run ledger that one process at a time holds: for a resource with one writer (the dedup
/// index) shared by instances on several processes or hosts. <see cref="AcquireAsync"/> waits while another live
/// holder has it; a holder that died without releasing it loses it when its time-to-live runs out.
/// </summary>
public sealed class LedgerLease(Ledger ledger, string name, TimeSpan timeToLive)
{
    /// <summary>This process's identity as a holder (host, process id and a random part, so a reused pid is another holder).</summary>
    public string Holder { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("N")[..8]}";

    public async Task<IAsyncDisposable> AcquireAsync(CancellationToken ct)
    {
        while (!ledger.Leases.TryAcquire(name, Holder, timeToLive))
            await Task.Delay(TimeSpan.FromMilliseconds(250), ct);
        return new Held(() => ledger.Leases.Release(name, Holder));
    }

    private sealed class Held(Action release) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            release();
            return ValueTask.CompletedTask;
        }
    }
}
