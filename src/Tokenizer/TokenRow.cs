namespace Pipeline.Tokenizer;

/// <summary>
/// One row of a token shard: one document, its split, and its token ids followed by &lt;|endoftext|&gt;, packed
/// little-endian (uint16 when the vocabulary has fewer than 65,536 ids, else int32; the manifest names the dtype).
/// Row boundaries are document boundaries.
/// </summary>
public sealed class TokenRow
{
    public string DocId { get; set; } = "";
    public string Split { get; set; } = "";
    public int Count { get; set; }
    public byte[] Tokens { get; set; } = [];
}
