using System.Text.Json;
using Pipeline.Contracts.V1;
using Pipeline.Storage;

namespace Pipeline.Storage.Tests;

public sealed class Row
{
    public string Text { get; set; } = "";
    public int N { get; set; }
}

public sealed class ShardStoreTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("store-").FullName;

    [Fact]
    public async Task Parquet_round_trip_verifies_checksum()
    {
        var store = new ShardStore(_root);
        var shard = await store.WriteParquetAsync("a/b.parquet", new[] { new Row { Text = "日本語", N = 1 }, new Row { Text = "x", N = 2 } },
            new ShardDescriptor("s1", "test", "cfg", ["p"], "run"));
        Assert.Equal(2, shard.Rows);
        Assert.Equal(new FileInfo(Path.Combine(_root, "a/b.parquet")).Length, shard.Bytes);
        var rows = await store.ReadParquetAsync<Row>(shard);
        Assert.Equal(["日本語", "x"], rows.Select(r => r.Text));
        Assert.Empty(Directory.GetFiles(Path.Combine(_root, "a"), "*.tmp"));

        File.AppendAllText(Path.Combine(_root, "a/b.parquet"), "garbage");
        var e = await Assert.ThrowsAsync<ShardRejectedException>(() => store.ReadParquetAsync<Row>(shard));
        Assert.Contains("checksum mismatch", e.Reason);
    }

    [Fact]
    public async Task Failed_write_leaves_no_file()
    {
        var store = new ShardStore(_root);
        await Assert.ThrowsAsync<IOException>(() => store.CommitFileAsync("x/y.bin", async s =>
        {
            await s.WriteAsync(new byte[100]);
            throw new IOException("disk full");
        }));
        Assert.False(File.Exists(Path.Combine(_root, "x/y.bin")));
        Assert.Empty(Directory.GetFiles(Path.Combine(_root, "x")));
    }

    [Theory]
    [InlineData("../outside.parquet")]
    [InlineData("a/../../outside.parquet")]
    [InlineData("/etc/passwd")]
    [InlineData("")]
    public void Uris_outside_the_root_are_refused(string uri)
    {
        var store = new ShardStore(_root);
        Assert.Throws<ShardRejectedException>(() => store.Resolve(uri));
    }

    [Fact]
    public void Symlink_out_of_the_root_is_refused()
    {
        var outside = Directory.CreateTempSubdirectory("outside-").FullName;
        Directory.CreateSymbolicLink(Path.Combine(_root, "link"), outside);
        var store = new ShardStore(_root);
        var e = Assert.Throws<ShardRejectedException>(() => store.Resolve("link/file.parquet"));
        Assert.Contains("symbolic link", e.Reason);
        Directory.Delete(outside, true);
    }

    [Fact]
    public void A_link_whose_target_climbs_through_another_link_is_refused()
    {
        // Regression: the check was lexical. With a -> b/../c and b -> /elsewhere, the OS resolves a to /elsewhere/../c
        // = a sibling of /elsewhere, outside the root, while a lexical reading of "b/../c" stays inside.
        var outside = Directory.CreateTempSubdirectory("outside-").FullName;
        var sibling = Path.Combine(Path.GetDirectoryName(outside)!, "c-" + Path.GetFileName(outside));
        Directory.CreateDirectory(Path.Combine(outside, "inner"));
        Directory.CreateDirectory(sibling);
        File.WriteAllText(Path.Combine(sibling, "secret.parquet"), "outside the root");
        try
        {
            Directory.CreateSymbolicLink(Path.Combine(_root, "b"), Path.Combine(outside, "inner"));
            Directory.CreateSymbolicLink(Path.Combine(_root, "a"), $"b/../../{Path.GetFileName(sibling)}");
            Assert.True(File.Exists(Path.Combine(_root, "a", "secret.parquet"))); // the OS does lead there
            var store = new ShardStore(_root);
            var e = Assert.Throws<ShardRejectedException>(() => store.Resolve("a/secret.parquet"));
            Assert.Contains("symbolic link", e.Reason);
            // A link that stays inside the root is fine.
            Directory.CreateDirectory(Path.Combine(_root, "real"));
            Directory.CreateSymbolicLink(Path.Combine(_root, "alias"), "real");
            Assert.Equal(Path.Combine(store.Root, "alias", "x.parquet"), store.Resolve("alias/x.parquet"));
        }
        finally
        {
            Directory.Delete(outside, true);
            Directory.Delete(sibling, true);
        }
    }

    public sealed class OtherRow
    {
        public string Url { get; set; } = "";
        public string Html { get; set; } = "";
    }

    [Fact]
    public async Task A_shard_of_another_kind_is_refused_naming_both_kinds()
    {
        // Regression: a raw-page shard read as clean documents gave rows of empty strings, processed silently.
        var store = new ShardStore(_root);
        var shard = await store.WriteParquetAsync("k/other.parquet", new[] { new OtherRow { Url = "u", Html = "<p>x</p>" } }, new ShardDescriptor("s", "t", "c", [], "r"));
        var e = await Assert.ThrowsAsync<ShardRejectedException>(() => store.ReadParquetAsync<Row>(shard));
        Assert.Contains("expected a Row shard, but this is a OtherRow shard", e.Reason);

        // A file written elsewhere (no kind in its metadata) must at least have the row type's columns.
        var path = Path.Combine(_root, "k", "foreign.parquet");
        await using (var file = File.Create(path))
            await Parquet.Serialization.ParquetSerializer.SerializeAsync(new[] { new OtherRow { Url = "u" } }, file);
        var (sha, bytes) = await ShardStore.HashFileAsync(path);
        var foreign = new ShardRef("f", "k/foreign.parquet", sha, 1, bytes, "t", "c", [], "r");
        e = await Assert.ThrowsAsync<ShardRejectedException>(() => store.ReadParquetAsync<Row>(foreign));
        Assert.Contains("lacks its columns Text, N", e.Reason);
        Assert.Single(await store.ReadParquetAsync<OtherRow>(foreign));
    }

    [Fact]
    public async Task Shards_are_read_one_row_group_at_a_time()
    {
        var store = new ShardStore(_root);
        var path = Path.Combine(_root, "groups.parquet");
        await using (var file = File.Create(path))
            for (var g = 0; g < 3; g++)
            {
                await Parquet.Serialization.ParquetSerializer.SerializeAsync(Enumerable.Range(g * 10, 10).Select(i => new Row { Text = $"t{i}", N = i }), file,
                    new Parquet.ParquetOptions { Append = g > 0 });
            }
        var (sha, bytes) = await ShardStore.HashFileAsync(path);
        var groups = new List<int>();
        await foreach (var group in store.ReadRowGroupsAsync<Row>(new ShardRef("g", "groups.parquet", sha, 30, bytes, "t", "c", [], "r")))
            groups.Add(group.Count);
        Assert.Equal([10, 10, 10], groups);
    }

    [Fact]
    public void Contract_round_trips_through_json()
    {
        var shard = new ShardRef("id", "shards/x.parquet", "ab", 3, 100, "clean", "cfg", ["p1", "p2"], "run");
        var message = new CleanShardCreated(shard);
        var back = JsonSerializer.Deserialize<CleanShardCreated>(JsonSerializer.Serialize(message))!;
        Assert.Equal(shard.Uri, back.Shard.Uri);
        Assert.Equal(shard.ParentShardIds, back.Shard.ParentShardIds);
        Assert.Equal(1, back.Shard.SchemaVersion);
    }

    public void Dispose() => Directory.Delete(_root, true);
}
