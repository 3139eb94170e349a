using System.IO.Hashing;
using System.Text;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Cleaner;

/// <summary>
/// Exact dedup's key, and where its claims are kept when a cleaner has no ledger: each 64-bit hash of normalized text
/// is held by the smallest document id that has it (<see cref="ClaimStore"/>), so the copy kept does not depend on which
/// cleaner saw which copy first.
/// </summary>
public static class ExactDedup
{
    /// <summary>A run's claims without a ledger: a ledger file of the run's own in the data root.</summary>
    public static string LocalClaimsPath(ShardStore store, string runId) => store.Resolve(RunArtifacts.IndexFolder(runId) + "/exact-dedup.db");

    /// <summary>The hash of a text's letters and digits, lower-cased: copies that differ only in spacing and punctuation are one text.</summary>
    public static long HashOf(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var c in text)
            if (char.IsLetterOrDigit(c)) builder.Append(char.ToLowerInvariant(c));
        return (long)XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(builder.ToString()));
    }
}
