namespace Pipeline.Contracts.Rows;

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

    /// <summary>Packs token ids little-endian: int32 when <paramref name="wide"/>, else uint16.</summary>
    public static byte[] Pack(int[] ids, bool wide)
    {
        if (wide)
        {
            var bytes = new byte[ids.Length * 4];
            Buffer.BlockCopy(ids, 0, bytes, 0, bytes.Length);
            return bytes;
        }
        var packed = new byte[ids.Length * 2];
        for (var i = 0; i < ids.Length; i++)
        {
            packed[2 * i] = (byte)ids[i];
            packed[2 * i + 1] = (byte)(ids[i] >> 8);
        }
        return packed;
    }

    public static int[] Unpack(byte[] bytes, bool wide)
    {
        if (wide)
        {
            var ids = new int[bytes.Length / 4];
            Buffer.BlockCopy(bytes, 0, ids, 0, bytes.Length);
            return ids;
        }
        var result = new int[bytes.Length / 2];
        for (var i = 0; i < result.Length; i++) result[i] = bytes[2 * i] | (bytes[2 * i + 1] << 8);
        return result;
    }
}
