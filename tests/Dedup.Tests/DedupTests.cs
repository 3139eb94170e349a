using Pipeline.Cleaner;
using Pipeline.Contracts.V1;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;
using Pipeline.Runtime;

namespace Pipeline.Dedup.Tests;

public sealed class DedupTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("dedup-").FullName;
    private readonly DedupOptions _options = new();

    /// <summary>Real documents: the text of the sample site's pages.</summary>
    private static List<CleanDocument> RealDocuments(string language) =>
        Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "fixtures", language), "*.html").Order(StringComparer.Ordinal)
            .Select(f => (f, text: TextExtractor.Extract(File.ReadAllText(f)).Text))
            .Where(x => x.text.Length > 2000)
            .Select(x => new CleanDocument { Id = language + "/" + Path.GetFileName(x.f), Url = x.f, Text = x.text, Language = language })
            .ToList();

    /// <summary>Replaces about <paramref name="fraction"/> of the words (or characters) with other ones.</summary>
    private static string Edit(string text, double fraction, int seed, bool characters)
    {
        var random = new Random(seed);
        if (characters)
            return new string(text.Select(c => random.NextDouble() < fraction ? (char)('あ' + random.Next(80)) : c).ToArray());
        return string.Join(' ', text.Split(' ').Select(w => random.NextDouble() < fraction ? "edit" + random.Next(1000) : w));
    }

    private async Task<ShardRef> Shard(string id, IReadOnlyCollection<CleanDocument> docs, ShardStore store, string run = "t") =>
        await store.WriteParquetAsync($"shards/clean/{run}/{id}.parquet", docs, new ShardDescriptor(id, "clean", "c", [], run));

    [Fact]
    public void Near_duplicates_score_high_and_different_documents_low()
    {
        var hasher = new MinHasher(_options);
        foreach (var (language, chars) in new[] { ("en", false), ("ja", true) })
        {
            var docs = RealDocuments(language).Take(10).ToList();
            foreach (var doc in docs)
            {
                var a = hasher.Signature(doc.Text, language);
                Assert.Equal(1.0, MinHasher.EstimatedJaccard(a, hasher.Signature(doc.Text, language)));
                var near = MinHasher.EstimatedJaccard(a, hasher.Signature(Edit(doc.Text, 0.005, 1, chars), language));
                Assert.True(near > 0.8, $"{doc.Id}: near-duplicate estimated at {near}");
            }
            for (var i = 1; i < docs.Count; i++)
            {
                var j = MinHasher.EstimatedJaccard(hasher.Signature(docs[i - 1].Text, language), hasher.Signature(docs[i].Text, language));
                Assert.True(j < 0.3, $"{docs[i - 1].Id} vs {docs[i].Id}: {j}");
            }
        }
    }

    [Theory]
    [InlineData("", "en")]
    [InlineData("", "ja")]
    [InlineData("short text, four words", "en")]
    [InlineData("短い文", "ja")]
    public void Documents_shorter_than_a_shingle_are_one_shingle(string text, string language)
    {
        var hasher = new MinHasher(_options);
        Assert.Single(hasher.Shingles(text, language));
        Assert.Equal(1.0, MinHasher.EstimatedJaccard(hasher.Signature(text, language), hasher.Signature(text + " ", language)));
        Assert.True(MinHasher.EstimatedJaccard(hasher.Signature(text, language), hasher.Signature("something else entirely", language)) < 0.1);
    }

    [Fact]
    public void A_huge_document_is_fingerprinted_in_bounded_size_and_its_near_copy_found()
    {
        var hasher = new MinHasher(_options);
        var random = new Random(9);
        var words = Enumerable.Range(0, 800_000).Select(_ => "w" + random.Next(200_000)).ToArray(); // about 5.6 MB
        var huge = string.Join(' ', words);
        words[400_000] = "changed";
        var copy = string.Join(' ', words);
        var a = hasher.Fingerprint(huge, "en");
        var b = hasher.Fingerprint(copy, "en");
        Assert.Equal(hasher.Permutations + _options.SketchSize, a.Length); // signature + a sketch capped at SketchSize
        Assert.True(hasher.Similarity(a, b) > 0.98, $"similarity {hasher.Similarity(a, b)}");
        var japanese = string.Concat(Enumerable.Range(0, 300_000).Select(i => (char)('あ' + random.Next(80))));
        Assert.Equal(hasher.Permutations + _options.SketchSize, hasher.Fingerprint(japanese, "ja").Length);
    }

    [Fact]
    public async Task Later_shards_are_deduplicated_against_earlier_ones_and_redelivery_is_consistent()
    {
        var store = new ShardStore(_root);
        var dedup = new ShardDeduplicator(_options, store);
        var originals = RealDocuments("en").Take(12).Concat(RealDocuments("ja").Take(8)).ToList();
        var first = await dedup.ProcessAsync(await Shard("clean-1", originals, store), default);
        Assert.Equal(new DedupStats(20, 20, 0), first.Stats);

        // Shard 2: near-copies of six earlier documents, a duplicate inside the shard, and four new documents.
        var copies = originals.Take(4).Concat(originals.Skip(14).Take(2)).Select((d, i) => new CleanDocument
        {
            Id = "x-copy-" + i, Url = d.Url + "?copy", Language = d.Language, Text = Edit(d.Text, 0.01, i, d.Language == "ja"),
        }).ToList();
        var fresh = RealDocuments("en").Skip(12).Take(4).ToList();
        var inner = new CleanDocument { Id = "x-inner-copy", Url = "x", Language = "en", Text = fresh[0].Text + " trailing words" };
        var second = await dedup.ProcessAsync(await Shard("clean-2", [.. copies, .. fresh, inner], store), default);
        Assert.Equal(new DedupStats(11, 4, 7), second.Stats);
        var kept = await store.ReadParquetAsync<CleanDocument>(second.Outputs[0]);
        Assert.Equal(fresh.Select(d => d.Id), kept.Select(d => d.Id));

        var pairs = await store.ReadParquetUncheckedAsync<DuplicatePair>(second.Outputs[0].Uri.Replace("dedup-", "duplicates-"));
        Assert.Equal(copies.Select(c => c.Id).Append("x-inner-copy"), pairs.Select(p => p.RemovedId));
        Assert.Equal(originals.Take(4).Concat(originals.Skip(14).Take(2)).Select(d => d.Id).Append(fresh[0].Id), pairs.Select(p => p.KeptId));
        Assert.All(pairs, p => Assert.True(p.EstimatedJaccard >= _options.Threshold));

        // A redelivered shard 2 (as after a crash mid-shard) gives the same output, not "everything is a duplicate".
        var again = await dedup.ProcessAsync(await Shard("clean-2", [.. copies, .. fresh, inner], store), default);
        Assert.Equal(second.Outputs[0].Sha256, again.Outputs[0].Sha256);
        using (var index = new LshIndex(dedup.IndexPath("t"), _options.Bands, _options.Rows))
            Assert.Equal(31, index.Count); // every document, removed ones too: each pair is found whichever comes second

        // Another run over the same documents has an index of its own: it keeps them all.
        var other = await dedup.ProcessAsync(await Shard("other-1", originals, store, run: "other"), default);
        Assert.Equal(new DedupStats(20, 20, 0), other.Stats);
    }

    [Fact]
    public async Task The_copy_kept_of_near_duplicates_is_the_smallest_id_whatever_the_order_of_the_shards()
    {
        // Groups of near copies spread over three shards, the smallest id of each group in a different shard; the
        // shards arrive in three different orders. What survives (written and not superseded) is the same each time:
        // the smallest id of each group, and every document that has no copy.
        var originals = RealDocuments("en").Take(9).Concat(RealDocuments("ja").Take(6)).ToList();
        CleanDocument Copy(CleanDocument d, string id, int seed) => new() { Id = id, Url = d.Url + "?" + id, Language = d.Language, Text = Edit(d.Text, 0.01, seed, d.Language == "ja") };
        var shards = new List<CleanDocument>[] { [], [], [] };
        for (var i = 0; i < originals.Count; i++)
        {
            var d = originals[i];
            if (i % 3 == 2) { shards[i % 3].Add(d); continue; } // no copies
            shards[i % 3].Add(d);
            shards[(i + 1) % 3].Add(Copy(d, "a-" + d.Id, i)); // smaller than the original, in the next shard
            shards[(i + 2) % 3].Add(Copy(d, "z-" + d.Id, i + 100));
        }
        var expected = originals.Select((d, i) => i % 3 == 2 ? d.Id : "a-" + d.Id).Order(StringComparer.Ordinal).ToList();
        foreach (var order in new[] { new[] { 0, 1, 2 }, [2, 1, 0], [1, 2, 0] })
        {
            var store = new ShardStore(Path.Combine(_root, string.Concat(order)));
            var ledger = new Ledger(Path.Combine(store.Root, "ledger.db"));
            using var dedup = new ShardDeduplicator(_options, store, ledger);
            var written = new List<string>();
            foreach (var s in order)
            {
                var result = await dedup.ProcessAsync(await Shard($"clean-{s}", shards[s], store), default);
                written.AddRange((await store.ReadParquetAsync<CleanDocument>(result.Outputs[0])).Select(d => d.Id));
            }
            Assert.Equal(written.Count, written.Distinct().Count());
            var superseded = ledger.Superseded.Ids("t");
            Assert.Equal(expected, written.Where(id => !superseded.Contains(id)).Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public void The_band_log_drops_what_never_committed_and_what_was_removed()
    {
        var path = Path.Combine(_root, "index", "lsh.db");
        var hasher = new MinHasher(_options);
        var signatures = Enumerable.Range(0, 3).Select(i => hasher.Fingerprint($"document number {i} with some words in it to hash", "en")).ToArray();
        using (var index = new LshIndex(path, _options.Bands, _options.Rows))
        {
            index.AddAll([("a", signatures[0], index.BandKeys(signatures[0]))], "shard-a");
            index.AddAll([("b", signatures[1], index.BandKeys(signatures[1]))], "shard-b");
        }
        var bands = Path.ChangeExtension(path, ".bands");
        var committed = new FileInfo(bands).Length;
        Assert.Equal(2 * _options.Bands * 12, committed);
        // A crash after the band records of a third document were synced but before its row committed, mid-record.
        using (var log = new FileStream(bands, FileMode.Append))
        {
            using var other = new LshIndex(Path.Combine(_root, "other.db"), _options.Bands, _options.Rows);
            var keys = other.BandKeys(signatures[2]);
            foreach (var key in keys)
            {
                log.Write(BitConverter.GetBytes(key));
                log.Write(BitConverter.GetBytes(3u));
            }
            log.Write([1, 2, 3, 4, 5]);
        }
        using (var index = new LshIndex(path, _options.Bands, _options.Rows))
        {
            Assert.Empty(index.Candidates(index.BandKeys(signatures[2])));
            Assert.Equal("a", index.Get(Assert.Single(index.Candidates(index.BandKeys(signatures[0])))).Id);
            Assert.Equal(committed, new FileInfo(bands).Length); // the uncommitted tail is cut off
            index.RemoveShard("shard-a");
            Assert.Empty(index.Candidates(index.BandKeys(signatures[0])));
            index.AddAll([("c", signatures[2], index.BandKeys(signatures[2]))], "shard-c");
        }
        using (var index = new LshIndex(path, _options.Bands, _options.Rows))
        {
            Assert.Empty(index.Candidates(index.BandKeys(signatures[0]))); // removed stays removed after a reload
            Assert.Equal("b", index.Get(Assert.Single(index.Candidates(index.BandKeys(signatures[1])))).Id);
            Assert.Equal("c", index.Get(Assert.Single(index.Candidates(index.BandKeys(signatures[2])))).Id);
            Assert.Equal(2, index.Count);
        }
        // A log cut short (a lost file, a bad copy) is an error naming it, not a silently smaller index.
        using (var log = new FileStream(bands, FileMode.Open)) log.SetLength(12);
        using (var index = new LshIndex(path, _options.Bands, _options.Rows))
        {
            var error = Assert.Throws<InvalidDataException>(() => index.Candidates(index.BandKeys(signatures[1])).ToList());
            Assert.Contains(bands, error.Message);
            Assert.Contains("rebuild", error.Message);
        }
    }

    [Fact]
    public void A_corrupt_index_is_a_clear_error_naming_the_file()
    {
        var path = Path.Combine(_root, "index", "lsh.db");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, Enumerable.Repeat((byte)0x42, 8192).ToArray());
        var error = Assert.Throws<InvalidDataException>(() => new LshIndex(path, 14, 8));
        Assert.Contains(path, error.Message);
        Assert.Contains("rebuild", error.Message);
    }

    [Fact]
    public async Task Two_instances_sharing_the_index_take_turns_and_see_each_others_documents()
    {
        // Two dedup services on one data root (two processes: separate index objects), serialized by the ledger lease.
        var store = new ShardStore(_root);
        var ledger = new Runtime.Ledger(Path.Combine(_root, "ledger.db"));
        using var a = new ShardDeduplicator(_options, store, ledger);
        using var b = new ShardDeduplicator(_options, store, ledger);
        var english = RealDocuments("en");
        CleanDocument Copy(CleanDocument d, string id) => new() { Id = "x-" + id, Url = d.Url + "?copy", Language = d.Language, Text = d.Text };

        Assert.Equal(5, ((DedupStats)(await b.ProcessAsync(await Shard("clean-0", english.Take(5).ToList(), store), default)).Stats!).Kept);
        Assert.Equal(5, ((DedupStats)(await a.ProcessAsync(await Shard("clean-1", english.Skip(5).Take(5).ToList(), store), default)).Stats!).Kept);
        // b opened the index before a wrote shard 1: it must decide shard 2 against shard 1 too.
        var second = (DedupStats)(await b.ProcessAsync(await Shard("clean-2", english.Skip(5).Take(5).Select((d, i) => Copy(d, $"b-{i}")).ToList(), store), default)).Stats!;
        Assert.Equal(new DedupStats(5, 0, 5), second);
        // And neither overwrote the other's band records: a fresh instance finds both shards' documents.
        using var c = new ShardDeduplicator(_options, store);
        var third = (DedupStats)(await c.ProcessAsync(await Shard("clean-3", english.Take(10).Select((d, i) => Copy(d, $"c-{i}")).ToList(), store), default)).Stats!;
        Assert.Equal(new DedupStats(10, 0, 10), third);

        // At the same time: of a shard and its copy, decided concurrently, exactly one is kept.
        var x = Shard("clean-4", english.Skip(10).Take(6).ToList(), store);
        var y = Shard("clean-5", english.Skip(10).Take(6).Select((d, i) => Copy(d, $"y-{i}")).ToList(), store);
        var results = await Task.WhenAll(Task.Run(async () => await a.ProcessAsync(await x, default)), Task.Run(async () => await b.ProcessAsync(await y, default)));
        // The copies' ids are the larger: whichever shard came first, only the originals survive (a copy written first
        // is superseded).
        var written = new List<string>();
        foreach (var result in results) written.AddRange((await store.ReadParquetAsync<CleanDocument>(result.Outputs[0])).Select(d => d.Id));
        var superseded = ledger.Superseded.Ids("t");
        Assert.Equal(english.Skip(10).Take(6).Select(d => d.Id).Order(), written.Where(id => !superseded.Contains(id)).Order());
    }

    [Fact]
    [Trait("Category", "S3")]
    public async Task Dedup_hosts_with_folders_of_their_own_share_the_index_through_the_object_store()
    {
        // Three hosts: each its own folder, one bucket prefix (the test S3 server) and one ledger between them.
        var bucket = new Pipeline.Tests.Shared.S3TestBucket();
        var ledger = new Runtime.Ledger(Path.Combine(_root, "ledger.db"));
        var clients = new List<S3ObjectStore>();
        ShardDeduplicator Host(string name)
        {
            var client = new S3ObjectStore(bucket.Options(), Pipeline.Tests.Shared.S3TestBucket.Credentials);
            clients.Add(client);
            var store = new ShardStore(Path.Combine(_root, name), client);
            return new ShardDeduplicator(_options, store, ledger, snapshotEvery: 3);
        }
        var english = RealDocuments("en");
        CleanDocument Copy(CleanDocument d, string id) => new() { Id = "x-" + id, Url = d.Url + "?copy", Language = d.Language, Text = d.Text };
        using var a = Host("a");
        using var b = Host("b");
        var producer = new ShardStore(Path.Combine(_root, "producer"), clients[0]);
        async Task<DedupStats> Decide(ShardDeduplicator host, string id, IEnumerable<CleanDocument> docs) =>
            (DedupStats)(await host.ProcessAsync(await Shard(id, docs.ToList(), producer), default)).Stats!;

        Assert.Equal(5, (await Decide(a, "clean-0", english.Take(5))).Kept);
        // b has never seen shard 0: it catches up from a's change before deciding.
        Assert.Equal(new DedupStats(5, 3, 2), await Decide(b, "clean-1", english.Skip(3).Take(5).Select((d, i) => i < 2 ? Copy(d, $"b-{i}") : d)));
        // A redelivered shard 1 on a (after a crash) decides the same and replaces, not adds; change 3 is a snapshot.
        Assert.Equal(new DedupStats(5, 3, 2), await Decide(a, "clean-1", english.Skip(3).Take(5).Select((d, i) => i < 2 ? Copy(d, $"b-{i}") : d)));
        Assert.Equal(5, (await Decide(b, "clean-2", english.Skip(8).Take(5))).Kept);

        // A host that joins late starts from the snapshot of change 3 and replays change 4.
        using var c = Host("c");
        var late = await Decide(c, "clean-3", english.Take(13).Select((d, i) => Copy(d, $"c-{i}")));
        Assert.Equal(new DedupStats(13, 0, 13), late);
        using var index = new LshIndex(Path.Combine(_root, "c", ShardDeduplicator.IndexUri("t")), _options.Bands, _options.Rows);
        Assert.Equal(5 + 5 + 5 + 13, index.Count); // every document decided, removed ones too
        Assert.True(File.Exists(Path.Combine(_root, "a", ShardDeduplicator.IndexUri("t"))));
        foreach (var client in clients) client.Dispose();
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
