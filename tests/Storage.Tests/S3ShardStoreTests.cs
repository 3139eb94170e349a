using Amazon.Runtime;
using Amazon.S3;
using Pipeline.Contracts.V1;
using Pipeline.Tests.Shared;

namespace Pipeline.Storage.Tests;

/// <summary>
/// Shards in S3 with the data root as a local cache, against the S3-compatible server .ci/run starts
/// (scripts/s3-local.sh: s3rver from npm on 127.0.0.1:4569, bucket pipeline-test; PIPELINE_TEST_S3 overrides the
/// endpoint). Each test works under a prefix of its own; each "host" is a store with a folder of its own.
/// </summary>
[Trait("Category", "S3")]
public sealed class S3ShardStoreTests : IDisposable
{
    private static readonly string Endpoint = S3TestBucket.Endpoint;
    private static readonly AWSCredentials Credentials = S3TestBucket.Credentials;
    private readonly string _root = Directory.CreateTempSubdirectory("s3-store-").FullName;
    private readonly S3TestBucket _bucket = new();
    private readonly S3StorageOptions _options;
    private readonly List<S3ObjectStore> _clients = [];

    public S3ShardStoreTests() => _options = _bucket.Options();

    private ShardStore Host(string name, long cacheLimit = long.MaxValue, long partSize = 16 << 20)
    {
        var client = new S3ObjectStore(_bucket.Options(partSize), Credentials);
        _clients.Add(client);
        return new ShardStore(Path.Combine(_root, name), client, cacheLimit);
    }

    private static Row[] Rows(int count, int textLength, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(i => new Row
        {
            N = i, Text = new string(Enumerable.Range(0, textLength).Select(_ => (char)('a' + random.Next(26))).ToArray()),
        }).ToArray();
    }

    private static ShardDescriptor Descriptor(string id) => new(id, "test", "cfg", ["p"], "run");

    [Fact]
    public async Task A_shard_written_on_one_host_is_read_on_another_that_has_only_the_bucket()
    {
        var writer = Host("a");
        var shard = await writer.WriteParquetAsync("shards/clean/run/s1.parquet", Rows(50, 40, 1), Descriptor("s1"));
        var reader = Host("b");
        Assert.False(File.Exists(Path.Combine(_root, "b", "shards/clean/run/s1.parquet")));
        var rows = await reader.ReadParquetAsync<Row>(shard);
        Assert.Equal(Rows(50, 40, 1).Select(r => r.Text), rows.Select(r => r.Text));
        Assert.Equal(shard.Sha256, (await ShardStore.HashFileAsync(Path.Combine(_root, "b", "shards/clean/run/s1.parquet"))).Sha256);
        Assert.Empty(Directory.GetFiles(Path.Combine(_root, "b"), "*.tmp", SearchOption.AllDirectories));

        // Any file written goes to the bucket too (manifests, reports), under the same URI.
        await writer.CommitFileAsync("reports/r.md", s => s.WriteAsync("# report"u8.ToArray()).AsTask());
        using var s3 = new AmazonS3Client(Credentials, new AmazonS3Config { ServiceURL = Endpoint, ForcePathStyle = true, AuthenticationRegion = "us-east-1" });
        using var report = await s3.GetObjectAsync(_options.Bucket, _options.Prefix + "/reports/r.md");
        Assert.Equal("# report", await new StreamReader(report.ResponseStream).ReadToEndAsync());
    }

    [Fact]
    public async Task An_object_changed_after_it_was_announced_is_rejected_by_checksum()
    {
        var shard = await Host("a").WriteParquetAsync("shards/x.parquet", Rows(10, 20, 2), Descriptor("x"));
        var other = await Host("c").WriteParquetAsync("shards/y.parquet", Rows(10, 20, 3), Descriptor("y"));
        await _clients[0].PutBytesAsync("shards/x.parquet", await File.ReadAllBytesAsync(Path.Combine(_root, "c", "shards/y.parquet")), default);

        var reader = Host("b");
        var error = await Assert.ThrowsAsync<ShardRejectedException>(() => reader.ReadParquetAsync<Row>(shard));
        Assert.True(error.Reason.Contains($"s3://pipeline-test/{_options.Prefix}/shards/x.parquet has {other.Sha256}"), error.Reason);
        Assert.False(File.Exists(Path.Combine(_root, "b", "shards/x.parquet"))); // the bad copy is not kept
    }

    [Theory]
    [InlineData("shards/missing.parquet", "does not exist")]
    [InlineData("../other/x.parquet", "'..'")]
    [InlineData("s3://other-bucket/shards/x.parquet", "absolute paths are not allowed")]
    [InlineData("/etc/passwd", "absolute paths are not allowed")]
    public async Task A_message_naming_no_object_or_one_outside_the_prefix_is_rejected_naming_it(string uri, string reason)
    {
        var shard = new ShardRef("x", uri, "00", 1, 1, "test", "cfg", [], "run");
        var error = await Assert.ThrowsAsync<ShardRejectedException>(() => Host("b").ReadParquetAsync<Row>(shard));
        Assert.Equal(uri, error.Uri);
        Assert.Contains(reason, error.Reason);
    }

    [Fact]
    public async Task A_large_shard_goes_up_in_parts_and_comes_back_whole()
    {
        // 5 MB parts (the S3 minimum) for a shard of about 12 MB: a multipart upload of three parts.
        var rows = Rows(3_000, 4_000, 4);
        var shard = await Host("a", partSize: 5 << 20).WriteParquetAsync("shards/big.parquet", rows, Descriptor("big"));
        Assert.True(shard.Bytes > 10 << 20, $"{shard.Bytes} bytes");
        using var s3 = new AmazonS3Client(Credentials, new AmazonS3Config { ServiceURL = Endpoint, ForcePathStyle = true, AuthenticationRegion = "us-east-1" });
        var head = await s3.GetObjectMetadataAsync(_options.Bucket, _options.Prefix + "/shards/big.parquet");
        Assert.Equal((shard.Bytes + (5 << 20) - 1) / (5 << 20), _clients[0].PartsUploaded);
        Assert.Equal(shard.Bytes, head.ContentLength);
        Assert.Equal(rows.Length, (await Host("b").ReadParquetAsync<Row>(shard)).Count);
    }

    [Fact]
    public async Task The_local_cache_keeps_the_most_recently_used_shards_within_its_limit()
    {
        var writer = Host("a");
        var shards = new List<ShardRef>();
        for (var i = 0; i < 3; i++) shards.Add(await writer.WriteParquetAsync($"shards/s{i}.parquet", Rows(200, 100, 10 + i), Descriptor($"s{i}")));
        var reader = Host("b", cacheLimit: shards.Min(s => s.Bytes) * 2 - 1); // room for one shard, not two
        foreach (var shard in shards) await reader.ReadParquetAsync<Row>(shard);
        var cached = Directory.GetFiles(Path.Combine(_root, "b", "shards")).Select(Path.GetFileName).ToList();
        Assert.Equal(["s2.parquet"], cached);
        Assert.Equal(200, (await reader.ReadParquetAsync<Row>(shards[0])).Count); // evicted: fetched again
        Assert.Equal(["s0.parquet"], Directory.GetFiles(Path.Combine(_root, "b", "shards")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_folder_published_on_one_host_is_fetched_whole_on_another_and_listed_only_when_complete()
    {
        var writer = Host("a");
        var folder = writer.Resolve("checkpoints/run/step-0000010");
        Directory.CreateDirectory(Path.Combine(folder, "sub"));
        await File.WriteAllTextAsync(Path.Combine(folder, "checkpoint.json"), "{\"step\": 10}");
        await File.WriteAllBytesAsync(Path.Combine(folder, "sub", "model.bin"), Enumerable.Range(0, 70_000).Select(i => (byte)i).ToArray());
        var reader = Host("b");
        Assert.Empty(await reader.ListFoldersAsync("checkpoints/run"));

        // The files alone are not a folder: it is listed and fetched only once its index is up.
        await _clients[0].UploadAsync("checkpoints/run/step-0000020/checkpoint.json", Path.Combine(folder, "checkpoint.json"), default);
        await writer.PublishFolderAsync("checkpoints/run/step-0000010");
        Assert.Equal(["checkpoints/run/step-0000010"], await reader.ListFoldersAsync("checkpoints/run"));
        Assert.False(Directory.Exists(await reader.FetchFolderAsync("checkpoints/run/step-0000020")));

        var fetched = await reader.FetchFolderAsync("checkpoints/run/step-0000010");
        Assert.Equal(Path.Combine(_root, "b", "checkpoints", "run", "step-0000010"), fetched);
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(folder, "sub", "model.bin")), await File.ReadAllBytesAsync(Path.Combine(fetched, "sub", "model.bin")));
        Assert.Equal(["checkpoint.json", "sub/model.bin"], Directory.GetFiles(fetched, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(fetched, f)).Order(StringComparer.Ordinal));

        await writer.UnpublishFolderAsync("checkpoints/run/step-0000010");
        Assert.Empty(await Host("c").ListFoldersAsync("checkpoints/run"));
    }

    [Fact]
    public async Task A_folder_whose_file_changed_or_whose_index_leaves_the_prefix_is_refused_and_not_kept()
    {
        var writer = Host("a");
        Directory.CreateDirectory(writer.Resolve("tokenizers/run"));
        await File.WriteAllTextAsync(writer.Resolve("tokenizers/run/vocab.txt"), "a b c");
        await writer.PublishFolderAsync("tokenizers/run");
        await _clients[0].PutBytesAsync("tokenizers/run/vocab.txt", "a b d"u8.ToArray(), default);
        var error = await Assert.ThrowsAsync<ShardRejectedException>(() => Host("b").FetchFolderAsync("tokenizers/run"));
        Assert.Contains($"s3://pipeline-test/{_options.Prefix}/tokenizers/run/vocab.txt has", error.Reason);
        Assert.False(Directory.Exists(Path.Combine(_root, "b", "tokenizers", "run")));

        await _clients[0].PutBytesAsync($"tokenizers/evil/{ShardStore.FolderIndex}", """[{"Name":"../../etc/x","Sha256":"00","Bytes":1}]"""u8.ToArray(), default);
        var escape = await Assert.ThrowsAsync<ShardRejectedException>(() => Host("c").FetchFolderAsync("tokenizers/evil"));
        Assert.Contains("'..'", escape.Reason);
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(_root, "c", "tokenizers")));
    }

    [Fact]
    public async Task A_replaced_file_is_read_as_its_latest_version_without_touching_the_local_copy()
    {
        var writer = Host("a");
        await writer.CommitFileAsync("shards/tokens/run/manifest.json", s => s.WriteAsync("v1"u8.ToArray()).AsTask());
        var reader = Host("b");
        Assert.Equal("v1", await File.ReadAllTextAsync(await reader.FetchFileAsync("shards/tokens/run/manifest.json")));
        await File.WriteAllTextAsync(writer.Resolve("shards/tokens/run/manifest.json"), "v2");
        await writer.PublishFileAsync("shards/tokens/run/manifest.json");
        Assert.Equal("v2", await reader.ReadLatestTextAsync("shards/tokens/run/manifest.json"));
        Assert.Equal("v1", await File.ReadAllTextAsync(reader.Resolve("shards/tokens/run/manifest.json")));
        await Assert.ThrowsAsync<FileNotFoundException>(() => reader.ReadLatestTextAsync("shards/tokens/other/manifest.json"));
    }

    public void Dispose()
    {
        foreach (var client in _clients) client.Dispose();
        Directory.Delete(_root, true);
    }
}
