namespace Pipeline.Storage;

/// <summary>
/// A shard reference that can never be processed (missing file, wrong checksum, path outside the root, corrupt
/// content). Consumers do not retry it: the message goes straight to the error queue with this reason.
/// </summary>
public sealed class ShardRejectedException(string uri, string reason, Exception? inner = null)
    : Exception($"Shard '{uri}' rejected: {reason}", inner)
{
    public string Uri { get; } = uri;
    public string Reason { get; } = reason;
}
