namespace Pipeline.Hosting;

/// <summary>
/// Ledger keys shared between services that do not reference each other (the trainer re-announces what the
/// evaluator has not marked). One definition each, so the writer and the readers cannot drift apart.
/// </summary>
public static class LedgerKeys
{
    /// <summary>Set by the evaluator once every task of a checkpoint is scored (or failed); value: the failures.</summary>
    public static string Evaluated(string checkpointUri) => $"evaluated:{checkpointUri}";
}
