using System.Text.Json;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
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
        await Assert.ThrowsAsync<IOException>(() => store.WriteAtomicAsync("x/y.bin", async s =>
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
    public void Contract_round_trips_through_json()
    {
        var shard = new ShardRef("id", "shards/x.parquet", "ab", 3, 100, "clean", "cfg", ["p1", "p2"], "run");
        var message = new CleanShardCreated(shard);
        var back = JsonSerializer.Deserialize<CleanShardCreated>(JsonSerializer.Serialize(message))!;
        Assert.Equal(shard.Uri, back.Shard.Uri);
        Assert.Equal(shard.ParentShardIds, back.Shard.ParentShardIds);
        Assert.Equal(1, back.Shard.SchemaVersion);
    }

    [Fact]
    public void Ledger_records_completion_once_and_survives_reopen()
    {
        var path = Path.Combine(_root, "ledger.db");
        var ledger = new RunLedger(path);
        var output = new ShardRef("out", "o.parquet", "ab", 3, 10, "clean", "c", ["in"], "run");
        Assert.False(ledger.IsProcessed("clean", "in"));
        ledger.CompleteInput("clean", "in", "run", [output], new { Kept = 3 });
        var reopened = new RunLedger(path);
        Assert.True(reopened.IsProcessed("clean", "in"));
        Assert.Single(reopened.Shards("run", "clean"));
    }

    public void Dispose() => Directory.Delete(_root, true);
}
