using System.Buffers.Binary;
using Pipeline.Contracts.V1;
using Pipeline.Contracts.Rows;
using Pipeline.Storage;

namespace Pipeline.Interop;

/// <summary>
/// The flat token files llm.c and nanoGPT-style loaders read (llm.c dev/data/data_common.py): a header of 256 int32
/// (magic 20240520, version 1 for uint16 tokens or 2 for uint32, token count), then the tokens little-endian. Train
/// and validation go to separate files, in manifest order; each document ends with &lt;|endoftext|&gt;, as in the
/// token shards. Written row group by row group, so memory stays bounded.
/// </summary>
public static class LlmcTokenFiles
{
    public const int Magic = 20240520;

    public static async Task<(long Train, long Validation)> WriteAsync(ShardStore store, string manifestUri, string outDir, CancellationToken ct = default)
    {
        var manifest = await store.ReadTokenManifestAsync(manifestUri, ct);
        var wide = manifest.Dtype == "int32";
        Directory.CreateDirectory(outDir);
        await using var train = Open(Path.Combine(outDir, "train.bin"));
        await using var validation = Open(Path.Combine(outDir, "val.bin"));
        long trainCount = 0, validationCount = 0;
        foreach (var entry in manifest.Shards)
        {
            var shard = new ShardRef(entry.ShardId, entry.Uri, entry.Sha256, 0, 0, Pipeline.Contracts.StageNames.Tokenize, "", [], "");
            await foreach (var rows in store.ReadRowGroupsAsync<TokenRow>(shard, ct))
            {
                foreach (var row in rows)
                {
                    var ids = TokenRow.Unpack(row.Tokens, wide);
                    var isValidation = row.Split == "validation";
                    Append(isValidation ? validation : train, ids, wide);
                    if (isValidation) validationCount += ids.Length;
                    else trainCount += ids.Length;
                }
            }
        }
        Finish(train, trainCount, wide);
        Finish(validation, validationCount, wide);
        return (trainCount, validationCount);
    }

    private static FileStream Open(string path)
    {
        var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        file.Write(new byte[256 * sizeof(int)]); // the header is filled in when the count is known
        return file;
    }

    private static void Append(Stream file, int[] ids, bool wide)
    {
        var bytes = new byte[ids.Length * (wide ? 4 : 2)];
        for (var i = 0; i < ids.Length; i++)
        {
            if (wide) BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i * 4), (uint)ids[i]);
            else BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 2), (ushort)ids[i]);
        }
        file.Write(bytes);
    }

    private static void Finish(FileStream file, long count, bool wide)
    {
        var header = new byte[256 * sizeof(int)];
        BinaryPrimitives.WriteInt32LittleEndian(header, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(4), wide ? 2 : 1);
        BinaryPrimitives.WriteInt32LittleEndian(header.AsSpan(8), checked((int)count));
        file.Position = 0;
        file.Write(header);
        file.Flush(flushToDisk: true);
    }
}
