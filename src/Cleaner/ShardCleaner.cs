using Pipeline.Contracts.V1;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;

namespace Pipeline.Cleaner;

/// <summary>Cleans one raw-page shard into one clean-document shard (plus an optional sample of rejected documents).</summary>
public sealed class ShardCleaner(CleanerOptions options, ShardStore store, Ledger? ledger = null) : IShardStage
{
    public const string Stage = Contracts.StageNames.Clean;

    static string IShardStage.Name => Stage;

    Task<StageResult> IShardStage.ProcessAsync(ShardRef input, CancellationToken ct) => ProcessAsync(input, ct);

    private readonly DocumentCleaner _cleaner = new(options, LoadNgWords(options.NgWordsFile));

    /// <summary>
    /// Cleans the shard one row group at a time: memory is bounded by a row group of input (and one of output), not
    /// by the shard, so shards of any size go through.
    /// </summary>
    /// <param name="source">Where the input shard lives, when not in this stage's store (CLI runs over any folder).</param>
    public async Task<StageResult> ProcessAsync(ShardRef input, CancellationToken ct, ShardStore? source = null)
    {
        var report = new CleanReport { RemovalOrder = [.. _cleaner.Recipe.RemovalOrder(options.Languages)] };
        var rejected = new List<RejectedDocument>();
        var configHash = StableId.ConfigHash(new { options, recipe = _cleaner.Recipe.Fingerprint });
        var shardId = StableId.Of(input.ShardId, Stage, configHash);
        // Exact duplicates are claimed in the run's ledger (shared by every cleaner of the run); without one, in a
        // ledger file of the run's own in the data root.
        var claims = !options.ExactDedup ? null : ledger ?? new Ledger(ExactDedup.LocalClaimsPath(store, input.RunId));
        await using var writer = store.CreateParquetWriter<CleanDocument>($"shards/clean/{input.RunId}/clean-{shardId}.parquet",
            new ShardDescriptor(shardId, Stage, configHash, [input.ShardId], input.RunId));
        await foreach (var pages in (source ?? store).ReadRowGroupsAsync<RawPage>(input, ct))
        {
            var outcomes = new DocumentCleaner.Outcome[pages.Count];
            Parallel.For(0, pages.Count, new ParallelOptions { CancellationToken = ct }, i =>
            {
                var page = pages[i];
                outcomes[i] = _cleaner.Clean(DocumentId(page), page.FinalUrl, page.Html,
                    isHtml: !page.ContentType.StartsWith("text/plain", StringComparison.OrdinalIgnoreCase));
            });
            report.Input += pages.Count;
            var candidates = new List<(CleanDocument Document, RawPage Page)>();
            for (var i = 0; i < outcomes.Length; i++)
            {
                var outcome = outcomes[i];
                report.InputChars += outcome.InputChars;
                if (outcome.Document is not { } document)
                {
                    report.Remove(outcome.RemovedBy!, outcome.InputChars);
                    Sample(rejected, outcome.RemovedBy!, outcome.Detail, pages[i]);
                    continue;
                }
                candidates.Add((document, pages[i]));
            }
            // Of exact duplicates the smallest document id is kept, wherever and whenever each copy arrives: a copy
            // kept earlier that a smaller one displaces is recorded as superseded, and tokenization skips it.
            var decided = claims?.Claims.Claim(input.RunId, candidates.Select(c => ExactDedup.HashOf(c.Document.Text)).ToList(), candidates.Select(c => c.Document.Id).ToList(), shardId);
            if (decided is { Displaced.Count: > 0 }) claims!.Superseded.Add(input.RunId, "exact_dedup", decided.Displaced);
            var kept = new List<CleanDocument>();
            for (var i = 0; i < candidates.Count; i++)
            {
                var (document, page) = candidates[i];
                if (decided is not null && !decided.Kept[i])
                {
                    report.Remove("exact_dedup", document.Chars);
                    Sample(rejected, "exact_dedup", decided.Holders[i], page);
                    continue;
                }
                document.SourceShard = input.ShardId;
                report.Kept++;
                report.KeptChars += document.Chars;
                report.PiiMasked += document.PiiMasked;
                report.Languages[document.Language] = report.Languages.GetValueOrDefault(document.Language) + 1;
                kept.Add(document);
            }
            await writer.AppendAsync(kept, ct);
        }
        var outputs = new List<ShardRef> { await writer.CompleteAsync(ct) };
        if (rejected.Count > 0)
        {
            await store.WriteParquetAsync($"shards/clean/{input.RunId}/rejected-{shardId}.parquet", rejected,
                new ShardDescriptor(shardId + "-rejected", "clean-rejected", configHash, [input.ShardId], input.RunId), ct);
        }
        return new StageResult(outputs, report);
    }

    /// <summary>
    /// A document's id depends on what the page is (URL without its port, source record), not on where it landed in
    /// a shard nor on the run, so a re-crawl after a crash, a second run and every arm of an ablation give a page the
    /// same id, and so the same train/validation split, the same copy of a duplicate kept and the same tokenizer. The
    /// port is left out so that the same site served on another port (the sample site takes a free one on each fresh
    /// run) gives the same ids.
    /// </summary>
    public static string DocumentId(RawPage page)
    {
        var url = page.FinalUrl.Length > 0 ? page.FinalUrl : page.Url;
        if (Uri.TryCreate(url, UriKind.Absolute, out var uri) && !uri.IsDefaultPort)
            url = new UriBuilder(uri) { Port = -1 }.Uri.ToString();
        return StableId.Of(url, page.Source);
    }

    private void Sample(List<RejectedDocument> rejected, string rule, string? detail, RawPage page)
    {
        if (rejected.Count(r => r.Rule == rule) >= options.RejectedSamplesPerRule) return;
        var text = TextExtractor.Extract(page.Html).Text;
        rejected.Add(new RejectedDocument { Rule = rule, Detail = detail ?? "", Url = page.FinalUrl, Text = text.Length > 2000 ? text[..2000] : text });
    }

    /// <summary>The NG-word list: <paramref name="file"/>, or the shipped list when it is empty.</summary>
    public static IReadOnlyList<string> LoadNgWords(string file)
    {
        // The shipped list missing is a broken install, not "no NG words": it once went unloaded for a wrong folder name.
        var path = file.Length > 0 ? file : Path.Combine(AppContext.BaseDirectory, "cleaner-data", "ng-words-ja.txt");
        if (!File.Exists(path))
            throw new FileNotFoundException($"NG-word list '{path}' (Pipeline:Cleaner:NgWordsFile) does not exist", path);
        return File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
    }
}

/// <summary>A sample row of what a rule removed (rejected-*.parquet), for inspection.</summary>
public sealed class RejectedDocument
{
    public string Rule { get; set; } = "";
    public string Detail { get; set; } = "";
    public string Url { get; set; } = "";
    public string Text { get; set; } = "";
}
