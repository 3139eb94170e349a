namespace Pipeline.Storage;

/// <summary>What a producer knows about a shard before it is written.</summary>
public sealed record ShardDescriptor(string ShardId, string Stage, string ConfigHash, IReadOnlyList<string> ParentShardIds, string RunId);
