using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace Pipeline.Bpe;

/// <summary>
/// A saved vocabulary loaded for encoding with Microsoft.ML.Tokenizers' tiktoken-compatible tokenizer (byte-level
/// BPE where a token's id is its merge rank), with our pre-tokenization pattern and special tokens.
/// </summary>
public sealed class TextTokenizer
{
    private readonly TiktokenTokenizer _tokenizer;

    private TextTokenizer(TiktokenTokenizer tokenizer, TokenizerMeta meta, string folder)
    {
        _tokenizer = tokenizer;
        Meta = meta;
        Folder = folder;
        var specials = meta.Specials.Select((s, i) => (s, i)).ToDictionary(x => x.s, x => meta.MergeableTokens + x.i);
        SpecialIds = specials;
        EndOfText = specials[SpecialTokens.EndOfText];
    }

    public TokenizerMeta Meta { get; }
    public string Folder { get; }
    public string Hash => Meta.Hash;
    public int VocabSize => Meta.VocabSize;
    public int EndOfText { get; }
    public IReadOnlyDictionary<string, int> SpecialIds { get; }

    /// <summary>
    /// The folder under <paramref name="tokenizersRoot"/> (a data root's tokenizers/) holding the tokenizer with this
    /// hash, or null. Reads only each candidate's tokenizer-meta.json.
    /// </summary>
    public static string? FindFolder(string tokenizersRoot, string hash)
    {
        if (!Directory.Exists(tokenizersRoot)) return null;
        foreach (var meta in Directory.GetFiles(tokenizersRoot, "tokenizer-meta.json", SearchOption.AllDirectories))
            if (JsonSerializer.Deserialize<TokenizerMeta>(File.ReadAllText(meta))?.Hash == hash) return Path.GetDirectoryName(meta);
        return null;
    }

    public static TextTokenizer Load(string folder)
    {
        var metaPath = Path.Combine(folder, "tokenizer-meta.json");
        if (!File.Exists(metaPath)) throw new FileNotFoundException($"no tokenizer in '{folder}': tokenizer-meta.json is missing", metaPath);
        var meta = JsonSerializer.Deserialize<TokenizerMeta>(File.ReadAllText(metaPath))
            ?? throw new InvalidDataException($"'{metaPath}' is empty");
        var specials = meta.Specials.Select((s, i) => (s, i)).ToDictionary(x => x.s, x => meta.MergeableTokens + x.i);
        using var stream = File.OpenRead(Path.Combine(folder, "tokenizer.tiktoken"));
        // No special tokens in the pre-tokenizer: text that spells "<|end|>" is ordinary text and can never forge a
        // document boundary or a chat turn; specials are inserted by id (CorpusTokenizer, ChatTemplate).
        var preTokenizer = new RegexPreTokenizer(new System.Text.RegularExpressions.Regex(meta.Pattern, System.Text.RegularExpressions.RegexOptions.Compiled), null);
        var tokenizer = TiktokenTokenizer.Create(stream, preTokenizer, normalizer: null, specialTokens: specials);
        return new TextTokenizer(tokenizer, meta, folder);
    }

    /// <summary>
    /// Encodes text. A lone surrogate has no UTF-8 form, so it is encoded as U+FFFD (what any UTF-8 writer does);
    /// all valid text round-trips exactly.
    /// </summary>
    public IReadOnlyList<int> Encode(string text) => _tokenizer.EncodeToIds(ReplaceLoneSurrogates(text));

    private static string ReplaceLoneSurrogates(string text)
    {
        if (text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0) return text;
        var chars = text.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1])) i++;
            else if (char.IsSurrogate(chars[i])) chars[i] = '\uFFFD';
        }
        return new string(chars);
    }

    public string Decode(IEnumerable<int> ids) => _tokenizer.Decode(ids);

    /// <summary>Copies the tokenizer's files into <paramref name="folder"/> (an export, a checkpoint's data root), replacing same-named ones.</summary>
    public void CopyFilesTo(string folder)
    {
        foreach (var file in Directory.GetFiles(Folder)) File.Copy(file, Path.Combine(folder, Path.GetFileName(file)), overwrite: true);
    }

    /// <summary>The pieces of an encoding, for `pipeline tokenizer encode`.</summary>
    public IReadOnlyList<(int Id, string Piece)> Pieces(string text) =>
        _tokenizer.EncodeToTokens(text, out _).Select(t => (t.Id, t.Value)).ToList();
}
