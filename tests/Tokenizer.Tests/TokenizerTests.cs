using System.Text.Json;
using Pipeline.Bpe;
using Pipeline.Cleaner;
using Pipeline.Contracts.V1;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;

namespace Pipeline.Tokenizer.Tests;

public sealed class TokenizerTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("tok-").FullName;

    private static readonly Lazy<List<string>> Corpus = new(() =>
        Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "fixtures"), "*.html", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal).Select(f => TextExtractor.Extract(File.ReadAllText(f)).Text).ToList());

    private TextTokenizer Trained(int vocab = 1000)
    {
        var folder = Path.Combine(_root, "tok");
        new BpeTrainer(vocab).Train(Corpus.Value).Save(folder);
        return TextTokenizer.Load(folder);
    }

    [Theory]
    [InlineData("Debian は「ユニバーサルオペレーティングシステム」です。apt-get install 123456 packages!")]
    [InlineData("emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇯🇵 and combining e\u0301 ｶﾀｶﾅ ①")]
    [InlineData("  leading and trailing spaces\n\n\ttabs\r\nCRLF  ")]
    [InlineData("<|endoftext|> looks special but is plain text here")]
    [InlineData("")]
    public void Encode_then_decode_is_exact(string text)
    {
        var tokenizer = Trained();
        Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
    }

    [Fact]
    public void Special_token_text_is_ordinary_text()
    {
        var tokenizer = Trained();
        var ids = tokenizer.Encode("before <|endoftext|> after <|user|>");
        Assert.DoesNotContain(tokenizer.EndOfText, ids);
        Assert.DoesNotContain(tokenizer.SpecialIds[SpecialTokens.User], ids);
        Assert.Equal("x<|endoftext|>", tokenizer.Decode([.. tokenizer.Encode("x"), tokenizer.EndOfText]));
    }

    [Fact]
    public void Random_unicode_round_trips()
    {
        var tokenizer = Trained();
        var random = new Random(7);
        for (var n = 0; n < 200; n++)
        {
            var builder = new System.Text.StringBuilder();
            for (var i = 0; i < 40; i++)
            {
                int cp;
                do cp = random.Next(4) == 0 ? random.Next(0x10000, 0x10FFFF) : random.Next(1, 0xFFFF);
                while (cp is >= 0xD800 and <= 0xDFFF);
                builder.Append(char.ConvertFromUtf32(cp));
            }
            var text = builder.ToString();
            Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
        }
    }

    [Fact]
    public void Lone_surrogates_do_not_break_encoding_and_come_back_as_replacement_characters()
    {
        var tokenizer = Trained();
        var ids = tokenizer.Encode("ab\uD800cd\uDC00");
        Assert.Equal("ab\uFFFDcd\uFFFD", tokenizer.Decode(ids));
    }

    [Fact]
    public void Training_is_deterministic_compresses_real_text_and_writes_the_ecosystem_formats()
    {
        var a = new BpeTrainer(1000).Train(Corpus.Value);
        var b = new BpeTrainer(1000).Train(Corpus.Value);
        Assert.Equal(a.Hash(), b.Hash());
        Assert.Equal(1000, a.VocabSize);

        var folder = Path.Combine(_root, "formats");
        a.Save(folder);
        var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(folder, "vocab.json")))!;
        Assert.Equal(a.VocabSize, vocab.Count);
        Assert.Equal(Enumerable.Range(0, a.VocabSize), vocab.Values.Order());
        var merges = File.ReadAllLines(Path.Combine(folder, "merges.txt")).Where(l => !l.StartsWith("#version")).ToList();
        Assert.Equal(a.Merges.Count, merges.Count);
        using var hf = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer.json")));
        Assert.Equal("BPE", hf.RootElement.GetProperty("model").GetProperty("type").GetString());
        Assert.Equal(SpecialTokens.All.Count, hf.RootElement.GetProperty("added_tokens").GetArrayLength());

        // Japanese and English text both compress to well under one token per UTF-8 byte, even with 1,000 tokens.
        var tokenizer = TextTokenizer.Load(folder);
        foreach (var text in Corpus.Value.Take(3).Concat(Corpus.Value.TakeLast(3)))
        {
            var bytesPerToken = (double)System.Text.Encoding.UTF8.GetByteCount(text) / tokenizer.Encode(text).Count;
            Assert.True(bytesPerToken > 1.5, $"{bytesPerToken:F2} bytes per token");
        }
        // Pre-tokenization: a Japanese run is one piece, split from Latin words, numbers in groups of at most 3 digits.
        var pieces = PreTokenizerPattern.Regex.Matches("日本語のテキストです。Debian 12 は 1234567 版 1.2.3").Select(m => m.Value);
        Assert.Equal(["日本語のテキストです", "。", "Debian", " 12", " は", " 123", "456", "7", " 版", " 1.2.3"], pieces);
    }

    [Fact]
    public void Bad_training_input_is_a_clear_error()
    {
        var empty = Assert.Throws<InvalidOperationException>(() => new BpeTrainer(1000).Train(["", ""]));
        Assert.Contains("empty corpus", empty.Message);
        var small = Assert.Throws<ArgumentException>(() => new BpeTrainer(100).Train(Corpus.Value));
        Assert.Contains("vocab size 100", small.Message);
    }

    [Fact]
    public async Task Token_shards_hold_documents_with_end_of_text_and_a_deterministic_split()
    {
        var store = new ShardStore(_root);
        var ledger = new Ledger(Path.Combine(_root, "ledger.db"));
        var tokenizer = Trained();
        var corpus = new CorpusTokenizer(new TokenizerOptions { ValidationPerMille = 200 }, store, ledger);
        var docs = Corpus.Value.Select((t, i) => new CleanDocument { Id = $"doc-{i}", Text = t, Language = "en" }).ToList();
        var input = await store.WriteParquetAsync("shards/dedup/t/d.parquet", docs, new ShardDescriptor("d1", "dedup", "c", [], "t"));
        var result = await corpus.ProcessAsync(input, tokenizer, default);
        var rows = await store.ReadParquetAsync<TokenRow>(result.Outputs[0]);
        Assert.Equal(docs.Count, rows.Count);
        for (var i = 0; i < rows.Count; i++)
        {
            var ids = TokenRow.Unpack(rows[i].Tokens, wide: false);
            Assert.Equal(rows[i].Count, ids.Length);
            Assert.Equal(tokenizer.EndOfText, ids[^1]);
            Assert.Equal(docs[i].Text, tokenizer.Decode(ids[..^1]));
            Assert.Equal(corpus.SplitOf(docs[i].Id), rows[i].Split);
        }
        Assert.Contains(rows, r => r.Split == "validation");
        Assert.Contains(rows, r => r.Split == "train");
        var stats = (TokenShardStats)result.Stats!;
        Assert.Equal(rows.Sum(r => (long)r.Count), stats.TrainTokens + stats.ValidationTokens);
        Assert.Equal(tokenizer.Hash, stats.TokenizerHash);
    }

    [Fact]
    public async Task Excluded_documents_are_not_tokenized_and_a_changed_list_is_refused()
    {
        var store = new ShardStore(_root);
        var ledger = new Ledger(Path.Combine(_root, "ledger.db"));
        var corpus = new CorpusTokenizer(new TokenizerOptions(), store, ledger);
        var docs = Corpus.Value.Take(10).Select((t, i) => new CleanDocument { Id = $"doc-{i}", Text = t, Language = "en" }).ToList();
        var input = await store.WriteParquetAsync("shards/dedup/x/d.parquet", docs, new ShardDescriptor("dx", "dedup", "c", [], "x"));
        var before = await store.ReadParquetAsync<TokenRow>((await corpus.ProcessAsync(input, Trained(), default)).Outputs[0]);

        const string uri = "decontamination/x/excluded-documents.json";
        var (sha, _) = await store.CommitFileAsync(uri, s => System.Text.Json.JsonSerializer.SerializeAsync(s, new[] { "doc-2", "doc-7" }));
        ledger.Documents.Set(Runtime.LedgerKeys.ExcludedDocuments("x"), System.Text.Json.JsonSerializer.Serialize(new Runtime.ExcludedDocuments(uri, sha, 2)));
        var result = await corpus.ProcessAsync(input, Trained(), default);
        var after = await store.ReadParquetAsync<TokenRow>(result.Outputs[0]);
        Assert.Equal(before.Select(r => r.DocId).Except(["doc-2", "doc-7"]), after.Select(r => r.DocId));
        Assert.NotEqual(before.Count, after.Count);

        File.WriteAllText(store.Resolve(uri), "[\"doc-2\"]");
        Assert.Contains("checksum", (await Assert.ThrowsAsync<InvalidDataException>(() => corpus.ExcludedIdsAsync("x"))).Message);
    }

    [Fact]
    public void Wide_ids_pack_as_int32()
    {
        int[] ids = [0, 1, 65_535, 65_536, 200_000];
        Assert.Equal(ids, TokenRow.Unpack(TokenRow.Pack(ids, wide: true), wide: true));
        Assert.Equal(ids[..3], TokenRow.Unpack(TokenRow.Pack(ids[..3], wide: false), wide: false));
    }

    [Fact]
    public async Task The_same_documents_give_the_same_vocabulary_however_they_were_sharded()
    {
        // Regression: the sample run's ids carried the site's random port and shards filled in crawl order, so two
        // identical runs trained different tokenizers. Ids leave the port out, and training reads documents in id order.
        var store = new ShardStore(_root);
        var ledger = new Ledger(Path.Combine(_root, "ledger.db"));
        var documents = Corpus.Value.Select((text, i) => new CleanDocument { Id = $"doc-{i:D4}", Text = text, Language = "ja" }).ToList();
        async Task<string> Train(string run, IEnumerable<IEnumerable<CleanDocument>> shards)
        {
            var refs = new List<ShardRef>();
            var n = 0;
            foreach (var shard in shards)
                refs.Add(await store.WriteParquetAsync($"shards/dedup/{run}/d-{n++}.parquet", shard.ToList(), new ShardDescriptor($"{run}-{n}", "dedup", "", [], run)));
            // A sample of half the corpus: which half must not depend on the sharding.
            var options = new TokenizerOptions { MaxTrainingChars = documents.Sum(d => (long)d.Text.Length) / 2 };
            return (await new CorpusTokenizer(options, store, ledger).TrainAsync(run, refs, 600, default)).Hash;
        }
        var inOrder = await Train("a", documents.Chunk(7));
        var shuffled = await Train("b", documents.OrderBy(d => d.Text.Length % 5).ThenByDescending(d => d.Id).Chunk(3));
        Assert.Equal(inOrder, shuffled);

        var page = new Pipeline.Contracts.Rows.RawPage { Url = "http://127.0.0.1:40123/ja/index.html", FinalUrl = "http://127.0.0.1:40123/ja/index.html", Source = "crawl" };
        Assert.Equal(ShardCleaner.DocumentId(page),
            ShardCleaner.DocumentId(new Pipeline.Contracts.Rows.RawPage { Url = "http://127.0.0.1:35555/ja/index.html", FinalUrl = "http://127.0.0.1:35555/ja/index.html", Source = "crawl" }));
        Assert.NotEqual(ShardCleaner.DocumentId(page),
            ShardCleaner.DocumentId(new Pipeline.Contracts.Rows.RawPage { FinalUrl = "http://127.0.0.1:40123/ja/other.html", Source = "crawl" }));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
