namespace Pipeline.Contracts.V1;

/// <summary>
/// A claim check for one shard: messages carry this, never the documents.
/// </summary>
/// <param name="ShardId">Stable id; the same input and config always yield the same id (idempotent reprocessing).</param>
/// <param name="Uri">Path relative to the storage root, with forward slashes.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the complete file.</param>
/// <param name="Rows">Row count.</param>
/// <param name="Bytes">File size in bytes.</param>
/// <param name="Stage">Producing stage (crawl, clean, dedup, tokenize).</param>
/// <param name="ConfigHash">Hash of the producing stage's configuration.</param>
/// <param name="ParentShardIds">Lineage: the shards this one was made from.</param>
/// <param name="RunId">The run this shard belongs to.</param>
public sealed record ShardRef(
    string ShardId,
    string Uri,
    string Sha256,
    long Rows,
    long Bytes,
    string Stage,
    string ConfigHash,
    IReadOnlyList<string> ParentShardIds,
    string RunId)
{
    /// <summary>Version of the message schema; bumped on incompatible changes.</summary>
    public int SchemaVersion { get; init; } = Schema.Version;
}
