using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Contracts;
using Pipeline.Contracts.Rows;
using Pipeline.Contracts.V1;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Dedup.Tests;

/// <summary>SemDeDup and D4 over hashed n-gram embeddings (<see cref="SemanticDeduplicator"/>), on the sample site's real pages with paraphrased copies planted.</summary>
public sealed class SemanticDedupTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("semdedup-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>
    /// The sample site's pages of 1,000 characters or more, except Japanese pages left mostly in English (Debian
    /// Reference's translation keeps some sections untranslated): those are true duplicates of the English ones.
    /// </summary>
    private static List<CleanDocument> RealDocuments() =>
        new[] { "en", "ja" }.SelectMany(language => Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "fixtures", language), "*.html").Order(StringComparer.Ordinal)
            .Select(f => (f, text: Cleaner.TextExtractor.Extract(File.ReadAllText(f)).Text))
            .Where(x => x.text.Length > 1000 && (language == "en" || x.text.Count(c => c > 0x3000) > x.text.Length / 3))
            .Select(x => new CleanDocument { Id = language + "/" + Path.GetFileName(x.f), Url = x.f, Text = x.text, Language = language })).ToList();

    /// <summary>A paraphrase-like copy: sentences reordered, then a sixth of the words (English) or of the particles (Japanese) changed.</summary>
    private static CleanDocument Paraphrase(CleanDocument original, Random random)
    {
        var sentences = Regex.Split(original.Text, @"(?<=[.!?。])\s*").Where(s => s.Length > 0).OrderBy(_ => random.Next());
        var text = string.Join(" ", sentences);
        text = original.Language == "en"
            ? string.Join(' ', text.Split(' ').Where(_ => random.NextDouble() > 0.15))
            : Regex.Replace(text, "[はがをに]", m => random.NextDouble() < 0.5 ? m.Value : m.Value is "は" ? "が" : "は");
        return new CleanDocument { Id = "copy-" + original.Id, Url = original.Url, Text = text, Language = original.Language };
    }

    [Fact]
    public void Paraphrased_copies_are_removed_and_the_rest_is_kept()
    {
        var documents = RealDocuments();
        Assert.True(documents.Count >= 60, $"{documents.Count} documents");
        var random = new Random(5);
        var originals = documents.OrderBy(_ => random.Next()).Take(20).ToList();
        var copies = originals.Select(o => Paraphrase(o, random)).ToList();
        var corpus = documents.Concat(copies).ToList();
        var settings = new SemanticDedupSettings(Clusters: 2);
        var embedded = corpus.Select(d => (d.Id, TextEmbedding.Embed(d.Text))).ToList();

        HashSet<string> Removed(SemanticDedupSettings s) => SemanticDeduplicator.Run(embedded, s).SelectMany(c => c.Removed).Select(r => r.Id).ToHashSet();
        int Caught(HashSet<string> removed) => originals.Count(o => removed.Contains(o.Id) || removed.Contains("copy-" + o.Id));
        var removed = Removed(settings);
        var rest = documents.Where(d => originals.All(o => o.Id != d.Id)).ToList();
        Assert.True(Caught(removed) >= 16, $"{Caught(removed)} of 20 planted copies caught");
        var details = string.Join("; ", SemanticDeduplicator.Run(embedded, settings).SelectMany(c => c.Removed).Where(r => rest.Any(d => d.Id == r.Id)).Select(r => $"{r.Id}~{r.KeptId} {r.Similarity:F3}"));
        Assert.True(rest.Count(d => removed.Contains(d.Id)) <= rest.Count / 20, $"{rest.Count(d => removed.Contains(d.Id))} of {rest.Count} other documents removed: {details}");
        // Of a pair, one goes and one stays.
        Assert.All(originals, o => Assert.False(removed.Contains(o.Id) && removed.Contains("copy-" + o.Id), o.Id));

        // The threshold does the work: with ε near 0 only copies almost identical to their original would go.
        Assert.True(Caught(Removed(settings with { Epsilon = 0.02 })) <= 4);

        // D4: a fifth of each cluster's kept documents, those nearest its centroid, pruned as prototypes.
        var pruned = SemanticDeduplicator.Run(embedded, settings with { PrototypeFraction = 0.2 });
        foreach (var cluster in pruned)
        {
            var duplicates = cluster.Removed.Count(r => r.KeptId is not null);
            Assert.Equal((int)Math.Floor((cluster.Documents - duplicates) * 0.2), cluster.Removed.Count(r => r.KeptId is null));
        }
    }

    [Fact]
    public async Task The_stage_records_what_it_removed_for_the_tokenizer_and_a_summary_for_the_report()
    {
        var store = new ShardStore(_root);
        var ledger = new Ledger(Path.Combine(_root, "ledger.db"));
        var documents = RealDocuments().Take(30).ToList();
        var copy = Paraphrase(documents[3], new Random(1));
        var shard = await store.WriteParquetAsync("shards/dedup/r/a.parquet", documents.Append(copy).ToList(), new ShardDescriptor("a", "dedup", "c", [], "r"));
        // A document superseded by a copy with a smaller id is not trained on, so it is not considered either.
        ledger.Superseded.Add("r", "test", [(documents[5].Id, documents[6].Id)]);

        // First the embeddings of the shard (any dedup service), then the decisions over every embedding shard of the run.
        var embeddings = Assert.Single((await new ShardEmbedder(store, new EmbeddingSource(store, ledger, null)).ProcessAsync(shard, default)).Outputs);
        Assert.Equal(31, embeddings.Rows);
        var summary = (SemanticDedupSummary)(await new SemanticDedupStage(store, ledger, NullLogger<SemanticDedupStage>.Instance)
            .RunAsync("r", [embeddings], JsonSerializer.Serialize(new SemanticDedupSettings()), default))!;
        Assert.Equal(30, summary.Documents);
        var list = JsonSerializer.Deserialize<ExcludedDocuments>(ledger.Documents.Get(LedgerKeys.SemanticDuplicates("r"))!)!;
        var removed = JsonSerializer.Deserialize<List<string>>(File.ReadAllText(store.Resolve(list.Uri)))!;
        Assert.Equal(summary.Duplicates + summary.Prototypes, removed.Count);
        Assert.Contains(removed, id => id == copy.Id || id == documents[3].Id);
        var pair = Assert.Single(summary.Examples, e => e.RemovedId == copy.Id || e.RemovedId == documents[3].Id);
        Assert.True(pair.Similarity > 1 - summary.Settings.Epsilon);
        Assert.NotNull(ledger.Documents.Get(LedgerKeys.SemanticDedup("r")));

        // Vectors of two embeddings (a service configured with a checkpoint, another without) are never clustered together.
        var error = await Assert.ThrowsAsync<InvalidDataException>(() => new SemanticDedupStage(store, ledger, NullLogger<SemanticDedupStage>.Instance)
            .RunAsync("r", [embeddings, embeddings with { ShardId = "b", ConfigHash = "checkpoint-r-gpt-300-128" }], JsonSerializer.Serialize(new SemanticDedupSettings()), default));
        Assert.Contains("made by hashed-1024 and checkpoint-r-gpt-300-128", error.Message);
    }
}
