using Pipeline.Contracts.V1;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;

namespace Pipeline.Cleaner.Tests;

public sealed class ShardCleanerTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("clean-").FullName;

    private async Task<ShardRef> RawShard(string id, IEnumerable<string> files, ShardStore store)
    {
        var pages = files.Select(f => new RawPage { Url = "http://site/" + Path.GetFileName(f), FinalUrl = "http://site/" + Path.GetFileName(f), Status = 200, Html = File.ReadAllText(f) }).ToList();
        return await store.WriteParquetAsync($"shards/crawl/t/{id}.parquet", pages, new ShardDescriptor(id, "crawl", "c", [], "t"));
    }

    [Fact]
    public async Task Exact_duplicates_of_an_earlier_shard_are_dropped_and_the_report_adds_up()
    {
        var store = new ShardStore(_root);
        var cleaner = new ShardCleaner(new CleanerOptions(), store);
        var pages = Fixtures.Pages("en").Take(20).ToList();
        var first = await cleaner.ProcessAsync(await RawShard("raw-1", pages, store), default);
        // The second shard repeats five pages of the first under other URLs, plus five new pages.
        var second = await cleaner.ProcessAsync(await RawShard("raw-2", pages.Take(5).Concat(Fixtures.Pages("en").Skip(20).Take(5)), store), default);

        var r1 = (CleanReport)first.Stats!;
        var r2 = (CleanReport)second.Stats!;
        Assert.Equal(20, r1.Input);
        Assert.Equal(r1.Input, r1.Kept + r1.Removed.Values.Sum(r => r.Documents));
        Assert.True(r1.Kept > 5);
        var keptFirst = await store.ReadParquetAsync<CleanDocument>(first.Outputs[0]);
        var keptSecond = await store.ReadParquetAsync<CleanDocument>(second.Outputs[0]);
        Assert.Equal(r1.Kept, keptFirst.Count);
        var repeatedKept = keptFirst.Count(d => pages.Take(5).Any(p => d.Url.EndsWith(Path.GetFileName(p))));
        Assert.Equal(repeatedKept, r2.Removed.GetValueOrDefault("exact_dedup")?.Documents ?? 0);
        Assert.Empty(keptSecond.Select(d => d.Text).Intersect(keptFirst.Select(d => d.Text)));
        Assert.All(keptSecond, d => Assert.Equal("raw-2", d.SourceShard));

        // Reprocessing the same shard (a redelivery) gives the same output, not "everything is a duplicate".
        var again = await cleaner.ProcessAsync(await RawShard("raw-1", pages, store), default);
        Assert.Equal(first.Outputs[0].Sha256, again.Outputs[0].Sha256);
    }

    [Fact]
    public async Task The_copy_kept_of_exact_duplicates_is_the_smallest_id_whatever_the_order_of_the_shards()
    {
        // Ten pages, each stored twice under two URLs (so two document ids), the copies in different shards; the shards
        // are cleaned in both orders. What survives (written and not superseded) is the same both times: one copy of
        // each page, the one with the smaller id.
        var files = Fixtures.Pages("en").Take(10).ToList();
        RawPage Page(string file, string folder) => new() { Url = $"http://site/{folder}/{Path.GetFileName(file)}", FinalUrl = $"http://site/{folder}/{Path.GetFileName(file)}", Status = 200, Html = File.ReadAllText(file) };
        var shards = new[]
        {
            files.Take(5).Select(f => Page(f, "p")).Concat(files.Skip(5).Select(f => Page(f, "q"))).ToList(),
            files.Take(5).Select(f => Page(f, "q")).Concat(files.Skip(5).Select(f => Page(f, "p"))).ToList(),
        };
        var survivors = new List<List<(string Id, string Text)>>();
        foreach (var order in new[] { new[] { 0, 1 }, [1, 0] })
        {
            var store = new ShardStore(Path.Combine(_root, string.Concat(order)));
            var ledger = new Runtime.Ledger(Path.Combine(store.Root, "ledger.db"));
            var cleaner = new ShardCleaner(new CleanerOptions(), store, ledger);
            var written = new List<CleanDocument>();
            foreach (var s in order)
            {
                var raw = await store.WriteParquetAsync($"shards/crawl/t/raw-{s}.parquet", shards[s], new ShardDescriptor($"raw-{s}", "crawl", "c", [], "t"));
                written.AddRange(await store.ReadParquetAsync<CleanDocument>((await cleaner.ProcessAsync(raw, default)).Outputs[0]));
            }
            var superseded = ledger.Superseded.Ids("t");
            survivors.Add(written.Where(d => !superseded.Contains(d.Id)).Select(d => (d.Id, d.Text)).OrderBy(d => d.Id, StringComparer.Ordinal).ToList());
        }
        Assert.True(survivors[0].Count > 5);
        Assert.Equal(survivors[0], survivors[1]);
        Assert.Equal(survivors[0].Count, survivors[0].Select(d => d.Text).Distinct().Count());
        var smaller = files.Select(f => new[] { ShardCleaner.DocumentId(Page(f, "p")), ShardCleaner.DocumentId(Page(f, "q")) }.Min(StringComparer.Ordinal)).ToHashSet();
        Assert.All(survivors[0], d => Assert.Contains(d.Id, smaller));
    }

    [Fact]
    public async Task A_shard_of_many_row_groups_is_cleaned_group_by_group_to_the_same_documents()
    {
        // Shards are read (and written) one row group at a time, so memory is bounded by the row group. The output
        // must not depend on where the row groups split the input.
        var pages = Fixtures.Pages("en").Take(24).Select(f => new RawPage { Url = "http://site/" + Path.GetFileName(f), FinalUrl = "http://site/" + Path.GetFileName(f), Status = 200, Html = File.ReadAllText(f) }).ToList();
        var whole = new ShardStore(Path.Combine(_root, "whole"));
        var split = new ShardStore(Path.Combine(_root, "split"));
        var one = await whole.WriteParquetAsync("raw.parquet", pages, new ShardDescriptor("raw", "crawl", "c", [], "t"));
        ShardRef many;
        await using (var writer = split.CreateParquetWriter<RawPage>("raw.parquet", new ShardDescriptor("raw", "crawl", "c", [], "t")))
        {
            await writer.AppendAsync(pages, p => p.Html.Length, pages.Max(p => p.Html.Length));
            many = await writer.CompleteAsync();
        }
        var groups = 0;
        await foreach (var _ in split.ReadRowGroupsAsync<RawPage>(many)) groups++;
        Assert.True(groups >= 4, $"{groups} row groups");

        var a = await new ShardCleaner(new CleanerOptions(), whole).ProcessAsync(one, default);
        var b = await new ShardCleaner(new CleanerOptions(), split).ProcessAsync(many, default);
        var keptA = await whole.ReadParquetAsync<CleanDocument>(a.Outputs[0]);
        var keptB = await split.ReadParquetAsync<CleanDocument>(b.Outputs[0]);
        Assert.True(keptA.Count > 5);
        Assert.Equal(keptA.Select(d => (d.Id, d.Text)), keptB.Select(d => (d.Id, d.Text)));
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(a.Stats), System.Text.Json.JsonSerializer.Serialize(b.Stats));
    }

    [Fact]
    public async Task A_corrupt_shard_is_rejected_naming_the_shard_and_the_next_one_is_cleaned()
    {
        var store = new ShardStore(_root);
        var cleaner = new ShardCleaner(new CleanerOptions(), store);
        var bad = await RawShard("raw-bad", Fixtures.Pages("en").Take(3), store);
        var path = store.Resolve(bad.Uri);
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0xFF;
        File.WriteAllBytes(path, bytes);
        var error = await Assert.ThrowsAsync<ShardRejectedException>(() => cleaner.ProcessAsync(bad, default));
        Assert.Contains("raw-bad", error.Message);
        Assert.Contains("checksum", error.Message);

        // Same bytes but a matching checksum: the Parquet reader fails, still naming the shard.
        var notParquet = await store.CommitFileAsync("shards/crawl/t/garbage.parquet", s => s.WriteAsync("not parquet at all"u8.ToArray()).AsTask());
        var garbage = bad with { Uri = "shards/crawl/t/garbage.parquet", Sha256 = notParquet.Sha256 };
        error = await Assert.ThrowsAsync<ShardRejectedException>(() => cleaner.ProcessAsync(garbage, default));
        Assert.Contains("garbage.parquet", error.Message);

        var good = await cleaner.ProcessAsync(await RawShard("raw-good", Fixtures.Pages("en").Take(3), store), default);
        Assert.Equal(3, ((CleanReport)good.Stats!).Input);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
