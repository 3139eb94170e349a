namespace Pipeline.Contracts;

/// <summary>
/// The stages as the ledger, shard descriptors and messages name them (the <c>stage</c> of a ShardRef). The services
/// that run them are named for what they are (crawler, cleaner, ...; `pipeline serve`); docs/architecture.md maps one
/// to the other.
/// </summary>
public static class StageNames
{
    public const string Crawl = "crawl";
    public const string Clean = "clean";
    public const string Dedup = "dedup";
    public const string Tokenize = "tokenize";

    /// <summary>The shard-producing stages in pipeline order.</summary>
    public static readonly IReadOnlyList<string> InOrder = [Crawl, Clean, Dedup, Tokenize];
}
