using System.Text.Json;
using Pipeline.Cleaner;
using Pipeline.Crawler;
using Pipeline.Dedup;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Tokenizer;
using Pipeline.Contracts.Rows;

namespace Pipeline.Cli.Tests;

/// <summary>The invariants of a finished run: every stage accounted for every row, nothing lost, nothing twice.</summary>
internal static class RunAssertions
{
    /// <param name="TokenContent">A digest of every token row (document id, split, tokens) in document-id order, whatever shards hold them.</param>
    public sealed record Outcome(HashSet<string> CrawledUrls, int CleanKept, int DedupKept, int TokenRows, double FinalLoss, string TokenizerHash, string TokenContent, int Decontaminated = 0);

    /// <param name="outDir">The coordinator's folder (its report).</param>
    /// <param name="store">Where the services' files are (by default the same folder).</param>
    public static async Task<Outcome> CheckAsync(string outDir, string runId = "sample", bool aligned = true, Ledger? ledger = null, ShardStore? store = null)
    {
        ledger ??= new Ledger(Path.Combine(outDir, "ledger.db"));
        store ??= new ShardStore(outDir);
        Assert.Equal("completed", ledger.Runs.State(runId));

        var urls = new List<string>();
        foreach (var shard in ledger.Artifacts.Shards(runId, "crawl"))
            urls.AddRange((await store.ReadParquetAsync<RawPage>(shard)).Select(p => p.Url));
        Assert.NotEmpty(urls);
        Assert.Equal(urls.Count, urls.Distinct().Count()); // no page written twice

        var clean = ledger.Artifacts.Stats(runId, ShardCleaner.Stage).Select(s => JsonSerializer.Deserialize<CleanReport>(s)!).ToList();
        Assert.Equal(urls.Count, clean.Sum(r => r.Input)); // every crawled page was cleaned once
        var cleanKept = 0;
        foreach (var shard in ledger.Artifacts.Shards(runId, ShardCleaner.Stage)) cleanKept += (await store.ReadParquetAsync<CleanDocument>(shard)).Count;
        Assert.Equal(clean.Sum(r => r.Kept), cleanKept);

        var dedup = ledger.Artifacts.Stats(runId, ShardDeduplicator.Stage).Select(s => JsonSerializer.Deserialize<DedupStats>(s)!).ToList();
        Assert.Equal(cleanKept, dedup.Sum(d => d.Input));
        Assert.Equal(dedup.Sum(d => d.Input), dedup.Sum(d => d.Kept + d.Removed));

        // Duplicates superseded by a smaller id that arrived later, and documents that decontamination removed
        // (Pipeline:Decontaminate:Remove), are the only ones not tokenized.
        var excluded = await new CorpusTokenizer(new TokenizerOptions(), store, ledger).ExcludedIdsAsync(runId);
        var dedupIds = new List<string>();
        foreach (var shard in ledger.Artifacts.Shards(runId, ShardDeduplicator.Stage))
            dedupIds.AddRange((await store.ReadParquetAsync<CleanDocument>(shard)).Select(d => d.Id));
        Assert.Equal(dedup.Sum(d => d.Kept), dedupIds.Count);
        var tokenized = new List<TokenRow>();
        foreach (var shard in ledger.Artifacts.Shards(runId, CorpusTokenizer.Stage))
            tokenized.AddRange(await store.ReadParquetAsync<TokenRow>(shard));
        Assert.DoesNotContain(tokenized, r => excluded.Contains(r.DocId));
        Assert.Equal(dedupIds.Where(id => !excluded.Contains(id)).Order(StringComparer.Ordinal), tokenized.Select(r => r.DocId).Order(StringComparer.Ordinal));
        var tokenRows = tokenized.Count;
        var content = new System.IO.Hashing.XxHash64();
        foreach (var row in tokenized.OrderBy(r => r.DocId, StringComparer.Ordinal))
            content.Append(System.Text.Encoding.UTF8.GetBytes($"{row.DocId} {row.Split} {string.Join(',', row.Tokens)}\n"));
        var manifest = await store.ReadTokenManifestAsync(RunArtifacts.TokenManifestUri(runId));
        Assert.Equal(ledger.Artifacts.Shards(runId, CorpusTokenizer.Stage).Count, manifest.Shards.Count);

        var evals = ledger.Evaluations.Evals($"{runId}-gpt");
        Assert.Contains(evals, e => e.Task == "validation_perplexity" && e.Metric == "loss" && double.IsFinite(e.Value));

        // The alignment rule fine-tuned the final checkpoint (LoRA SFT on the shipped chat examples) and the evaluator
        // scored the result, on the same validation split, as a checkpoint of its own run with its lineage.
        if (aligned)
        {
            var finalStep = evals.Max(e => e.Step);
            var alignedEvals = ledger.Evaluations.Evals($"{runId}-gpt-sft-from-{finalStep}");
            Assert.Contains(alignedEvals, e => e.Task == "validation_perplexity" && e.Metric == "loss" && double.IsFinite(e.Value));
            var lineage = JsonDocument.Parse(File.ReadAllText(Path.Combine(await store.FetchFolderAsync(alignedEvals[0].Checkpoint), "lineage.json"))).RootElement;
            Assert.Equal("sft+lora", lineage.GetProperty("method").GetString());
            Assert.EndsWith($"step-{finalStep:D7}", lineage.GetProperty("baseCheckpoint").GetString());
        }

        var report = File.ReadAllText(Path.Combine(outDir, "reports", "report.md"));
        Assert.Contains("## Training", report);
        var finalLoss = evals.Where(e => e.Metric == "loss").MaxBy(e => e.Step)!.Value;
        var tokenizer = RunArtifacts.TokenizerOf(ledger, runId) ?? throw new InvalidOperationException($"run {runId} has no tokenizer");
        return new Outcome(urls.ToHashSet(), cleanKept, dedup.Sum(d => d.Kept), tokenRows, finalLoss, tokenizer.Hash, Convert.ToHexStringLower(content.GetCurrentHash()),
            ledger.Documents.Get(LedgerKeys.ExcludedDocuments(runId)) is { } json ? JsonSerializer.Deserialize<ExcludedDocuments>(json)!.Documents : 0);
    }
}
