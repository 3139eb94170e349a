namespace Pipeline.Contracts.Rows;

/// <summary>One row of an embedding shard (schema: docs/schemas.md#embeddings): a kept document's embedding for semantic dedup.</summary>
public sealed class DocumentEmbedding
{
    public string Id { get; set; } = "";
    /// <summary>The text's first 160 characters: what the report shows of a removed pair.</summary>
    public string Start { get; set; } = "";
    public float[] Vector { get; set; } = [];
}
