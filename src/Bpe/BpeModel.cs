using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pipeline.Bpe;

/// <summary>
/// A trained byte-level BPE vocabulary: token byte strings by id (ids are merge ranks), the merges, and the special
/// tokens after them. Saved as tokenizer.tiktoken (what we load with Microsoft.ML.Tokenizers), vocab.json +
/// merges.txt (GPT-2 style) and a Hugging Face tokenizer.json.
/// </summary>
public sealed class BpeModel(IReadOnlyList<byte[]> tokens, IReadOnlyList<(int A, int B)> merges, IReadOnlyList<string> specials)
{
    public IReadOnlyList<byte[]> Tokens { get; } = tokens;
    public IReadOnlyList<(int A, int B)> Merges { get; } = merges;
    public IReadOnlyList<string> Specials { get; } = specials;
    public int VocabSize => Tokens.Count + Specials.Count;

    public Dictionary<string, int> SpecialIds() => Specials.Select((s, i) => (s, i)).ToDictionary(x => x.s, x => Tokens.Count + x.i);

    /// <summary>
    /// Writes the tokenizer files into <paramref name="folder"/> and returns the vocabulary's hash. Plain writes: a
    /// folder that others read is written whole through Storage's AtomicWrite.Folder by its owner (the tokenizer stage).
    /// </summary>
    public string Save(string folder)
    {
        Directory.CreateDirectory(folder);
        var tiktoken = new StringBuilder();
        for (var i = 0; i < Tokens.Count; i++) tiktoken.Append(Convert.ToBase64String(Tokens[i])).Append(' ').Append(i).Append('\n');
        File.WriteAllText(Path.Combine(folder, "tokenizer.tiktoken"), tiktoken.ToString());

        var byteToUnicode = Gpt2ByteToUnicode();
        string Printable(byte[] bytes) => string.Concat(bytes.Select(b => byteToUnicode[b]));
        var vocab = new JsonObject();
        for (var i = 0; i < Tokens.Count; i++) vocab[Printable(Tokens[i])] = i;
        foreach (var (special, id) in SpecialIds()) vocab[special] = id;
        File.WriteAllText(Path.Combine(folder, "vocab.json"), vocab.ToJsonString());
        var mergeLines = Merges.Select(m => $"{Printable(Tokens[m.A])} {Printable(Tokens[m.B])}");
        File.WriteAllText(Path.Combine(folder, "merges.txt"), "#version: 0.2\n" + string.Join('\n', mergeLines) + "\n");

        var hf = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(SpecialIds().Select(kv => (JsonNode)new JsonObject
            {
                ["id"] = kv.Value, ["content"] = kv.Key, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
            }).ToArray()),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = PreTokenizerPattern.Portable }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false }),
            },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["fuse_unk"] = false, ["byte_fallback"] = false,
                ["vocab"] = JsonNode.Parse(vocab.ToJsonString()),
                ["merges"] = new JsonArray(mergeLines.Select(l => (JsonNode)JsonValue.Create(l)!).ToArray()),
            },
        };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), hf.ToJsonString());

        var hash = Hash();
        var meta = new TokenizerMeta(VocabSize, Tokens.Count, Specials.ToList(), PreTokenizerPattern.Pattern, hash);
        File.WriteAllText(Path.Combine(folder, "tokenizer-meta.json"), JsonSerializer.Serialize(meta, new JsonSerializerOptions { WriteIndented = true }));
        return hash;
    }

    /// <summary>Identity of the vocabulary: the same tokens, specials and pattern give the same hash.</summary>
    public string Hash()
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var token in Tokens)
        {
            sha.AppendData(BitConverter.GetBytes(token.Length));
            sha.AppendData(token);
        }
        sha.AppendData(Encoding.UTF8.GetBytes(string.Join('\n', Specials) + PreTokenizerPattern.Pattern));
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..16];
    }

    /// <summary>GPT-2's reversible map from bytes to printable characters, used by vocab.json and merges.txt.</summary>
    public static char[] Gpt2ByteToUnicode()
    {
        var map = new char[256];
        var n = 0;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)(256 + n++);
        }
        return map;
    }
}

/// <summary>tokenizer-meta.json.</summary>
public sealed record TokenizerMeta(int VocabSize, int MergeableTokens, List<string> Specials, string Pattern, string Hash);
