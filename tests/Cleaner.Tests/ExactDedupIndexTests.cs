namespace Pipeline.Cleaner.Tests;

public sealed class ExactDedupIndexTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("exact-").FullName;

    [Fact]
    public async Task Cleaners_claiming_the_same_hashes_at_once_give_each_one_holder()
    {
        // Two cleaners (own connections, as two processes have) claim overlapping hashes concurrently: each hash
        // goes to exactly one shard, and both see the same holder. Before, a hash was looked up, then added after the
        // shard was written, so two cleaners could both keep a document.
        var path = Path.Combine(_root, "exact-dedup.db");
        var hashes = Enumerable.Range(0, 2_000).Select(i => (long)i * 7919).ToList();
        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(worker => Task.Run(() =>
        {
            using var index = new ExactDedupIndex(path);
            var holders = new List<string>();
            foreach (var batch in hashes.Chunk(100))
                holders.AddRange(index.Claim(batch, $"shard-{worker}"));
            return holders;
        })));
        for (var i = 0; i < hashes.Count; i++)
            Assert.Single(results.Select(r => r[i]).Distinct());
        Assert.True(results.Select((r, worker) => r.Count(h => h == $"shard-{worker}")).Sum() == hashes.Count);
    }

    [Fact]
    public void A_shard_done_again_keeps_what_it_claimed()
    {
        using var index = new ExactDedupIndex(Path.Combine(_root, "exact-dedup.db"));
        Assert.Equal(["a", "a"], index.Claim([1, 2], "a"));
        Assert.Equal(["a", "b"], index.Claim([1, 3], "b"));
        Assert.Equal(["a", "a"], index.Claim([1, 2], "a"));
    }

    public void Dispose() => Directory.Delete(_root, true);
}
