using System.Text;
using System.Text.Json;
using Pipeline.Cleaner;
using Pipeline.Bpe;

namespace Pipeline.Interop.Tests;

/// <summary>
/// The exported tokenizer files loaded by the libraries they are meant for, Hugging Face tokenizers (its Rust core
/// through the Node binding) and tiktoken, from tests/interop: the same ids and
/// the same decoded text as this project's encoder, on more than a megabyte of Japanese and English with emoji,
/// numbers, code and CRLF.
/// </summary>
public sealed class TokenizerFileTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("tok-files-").FullName;

    /// <summary>Text of the sample site's pages (ja and en), then lines with emoji, numbers, code and CRLF, to 1 MB+.</summary>
    private static string MixedText()
    {
        var site = Path.Combine(Ecosystem.Folder, "..", "..", "samples", "site");
        var builder = new StringBuilder();
        foreach (var file in Directory.GetFiles(site, "*.html", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            builder.Append(TextExtractor.Extract(File.ReadAllText(file)).Text).Append('\n');
        string[] extras =
        [
            "emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇯🇵🇺🇸 keycap 1️⃣ and combining e\u0301 ｶﾀｶﾅ ① ㈱ 〒100-0001\r\n",
            "numbers 3.14159 1,234,567 0x1F 2026-12-01 12:30:45 v1.2.3 -42 +7 ½ 12345678901234567890\r\n",
            "code: for (int i = 0; i < n; i++) { sum += a[i] * b[i]; } // 合計\r\n",
            "    def f(x):\n        return {'a': [1, 2, 3], \"b\": x ** 2}  # コメント\n",
            "shell $ apt-get install -y rabbitmq-server && echo \"done\" | tee /tmp/log.txt\r\n\r\n",
            "全角ＡＢＣ１２３　スペース　と半角 ABC 123、句読点。「括弧」『二重』（丸）…‥〜\n",
            "don't they'll we've I'M YOU'RE it'd\t\ttabs  and   spaces   \n",
        ];
        var i = 0;
        while (Encoding.UTF8.GetByteCount(builder.ToString()) < 1_100_000) builder.Append(extras[i++ % extras.Length]);
        return builder.ToString();
    }

    private static readonly Lazy<string> Text = new(MixedText);

    private TextTokenizer Trained()
    {
        var folder = Path.Combine(_root, "tok");
        var lines = Text.Value.Split('\n');
        new BpeTrainer(3000).Train(lines.Take(lines.Length / 2)).Save(folder);
        return TextTokenizer.Load(folder);
    }

    [Fact]
    public void Hugging_Face_tokenizers_loads_tokenizer_json_and_splits_as_this_project_does()
    {
        // Regression: tokenizer.json held .NET-only regex syntax and failed to load ("invalid character property name").
        var tokenizer = Trained();
        Assert.True(Encoding.UTF8.GetByteCount(Text.Value) > 1_000_000);
        var input = Path.Combine(_root, "input.txt");
        File.WriteAllText(input, Text.Value);
        var output = Path.Combine(_root, "hf.json");
        Ecosystem.Node("hf-tokenizers.mjs", Path.Combine(tokenizer.Folder, "tokenizer.json"), input, output);
        using var result = JsonDocument.Parse(File.ReadAllText(output));
        var ids = result.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToList();
        var ours = tokenizer.Encode(Text.Value);
        Assert.True(ours.Count > 200_000, $"{ours.Count} tokens");
        AssertSameIds(ours, ids);
        Assert.Equal(Text.Value, result.RootElement.GetProperty("decoded").GetString());
    }

    [Fact]
    public void Tiktoken_loads_the_ranks_and_splits_as_this_project_does()
    {
        var tokenizer = Trained();
        var input = Path.Combine(_root, "input.txt");
        File.WriteAllText(input, Text.Value + "\n<|endoftext|> typed in text stays text\n");
        var specials = Path.Combine(_root, "specials.json");
        File.WriteAllText(specials, JsonSerializer.Serialize(tokenizer.SpecialIds));
        var pattern = Path.Combine(_root, "pattern.txt");
        File.WriteAllText(pattern, PreTokenizerPattern.Portable);
        var output = Path.Combine(_root, "tiktoken.json");
        Ecosystem.Node("tiktoken.mjs", Path.Combine(tokenizer.Folder, "tokenizer.tiktoken"), specials, pattern, input, output);
        using var result = JsonDocument.Parse(File.ReadAllText(output));
        AssertSameIds(tokenizer.Encode(File.ReadAllText(input)), result.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToList());
        Assert.Equal(File.ReadAllText(input), result.RootElement.GetProperty("decoded").GetString());
        // tiktoken's encode() refuses special-token text by default; encode_ordinary (above) treats it as text, as we do.
        Assert.True(result.RootElement.GetProperty("specialRaises").GetBoolean());
    }

    [Fact]
    public void Special_tokens_behave_as_documented_in_each_library()
    {
        // This project never parses special tokens from text (they are inserted by id); Hugging Face tokenizers
        // matches added tokens in text, as every HF tokenizer does and its chat templates need (docs/tokenizer.md).
        var tokenizer = Trained();
        var text = "a<|endoftext|>b<|user|>";
        var input = Path.Combine(_root, "special.txt");
        File.WriteAllText(input, text);
        var output = Path.Combine(_root, "special.json");
        Ecosystem.Node("hf-tokenizers.mjs", Path.Combine(tokenizer.Folder, "tokenizer.json"), input, output);
        using var result = JsonDocument.Parse(File.ReadAllText(output));
        var hf = result.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToList();
        Assert.Contains(tokenizer.EndOfText, hf);
        Assert.Contains(tokenizer.SpecialIds[SpecialTokens.User], hf);
        var ours = tokenizer.Encode(text);
        Assert.DoesNotContain(tokenizer.EndOfText, ours);
        Assert.DoesNotContain(tokenizer.SpecialIds[SpecialTokens.User], ours);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(tokenizer.Folder, "tokenizer.json")));
        Assert.All(json.RootElement.GetProperty("added_tokens").EnumerateArray(), t => Assert.True(t.GetProperty("special").GetBoolean()));
    }

    private static void AssertSameIds(IReadOnlyList<int> expected, IReadOnlyList<int> actual)
    {
        var first = Enumerable.Range(0, Math.Min(expected.Count, actual.Count)).FirstOrDefault(i => expected[i] != actual[i], -1);
        Assert.True(first < 0 && expected.Count == actual.Count,
            first < 0 ? $"{expected.Count} ids here, {actual.Count} there" : $"first difference at token {first}: {expected[first]} here, {actual[first]} there");
    }

    public void Dispose() => Directory.Delete(_root, true);
}
