using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Contracts.V1;
using Pipeline.Crawler.Warc;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;

namespace Pipeline.Crawler.Tests;

public sealed class WarcTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("warc-").FullName;

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", name);

    private static IReadOnlyList<string> EnglishPages() =>
        Directory.GetFiles(Fixture("en"), "*.html").Order(StringComparer.Ordinal).Take(12).ToList();

    /// <summary>A WARC of real pages: a warcinfo record, 12 English pages, a Shift_JIS page, a 404, a PNG and a WET record.</summary>
    private string BuildWarc(string name, bool gzip)
    {
        var path = Path.Combine(_root, name);
        using var writer = new WarcWriter(File.Create(path), gzip);
        writer.WriteWarcInfo("tests");
        var date = new DateTime(2026, 11, 1, 0, 0, 0, DateTimeKind.Utc);
        foreach (var page in EnglishPages())
            writer.WriteResponse($"http://archive.test/en/{Path.GetFileName(page)}", date, 200, "text/html; charset=utf-8", File.ReadAllBytes(page));
        writer.WriteResponse("http://archive.test/legacy/sjis.html", date, 200, "text/html; charset=Shift_JIS", File.ReadAllBytes(Fixture("shift_jis-pr01-02.html")));
        writer.WriteResponse("http://archive.test/missing", date, 404, "text/html", "<p>not found</p>"u8);
        writer.WriteResponse("http://archive.test/logo.png", date, 200, "image/png", new byte[] { 0x89, 0x50, 0x4E, 0x47 });
        writer.WriteConversion("http://archive.test/wet", date, "これは WET のテキストです。\nplain text line");
        return path;
    }

    private static (List<WarcRecord> Records, List<WarcError> Errors) ReadAll(string path)
    {
        var errors = new List<WarcError>();
        var records = new WarcReader().Read(path, errors.Add).ToList();
        return (records, errors);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Records_are_read_with_their_offsets(bool gzip)
    {
        var path = BuildWarc(gzip ? "a.warc.gz" : "a.warc", gzip);
        var (records, errors) = ReadAll(path);
        Assert.Empty(errors);
        Assert.Equal(17, records.Count);
        Assert.Equal(["warcinfo", "response", "conversion"], records.Select(r => r.Type).Distinct());
        Assert.Equal(records.Count, records.Select(r => r.Offset).Distinct().Count());
        // Each offset points at the record's start: a reader started there reads that record first.
        var bytes = File.ReadAllBytes(path);
        var second = records[1].Offset;
        Assert.Equal(gzip ? [0x1F, 0x8B] : "WA"u8.ToArray(), bytes[(int)second..(int)(second + 2)]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Pages_become_raw_shards_and_the_skips_are_counted(bool gzip)
    {
        var path = BuildWarc(gzip ? "b.warc.gz" : "b.warc", gzip);
        var store = new ShardStore(_root);
        var ledger = new Ledger(Path.Combine(_root, "ledger.db"));
        var shards = new List<ShardRef>();
        var summary = await new WarcIngester(new CrawlOptions { PagesPerShard = 5 }, store, ledger, NullLogger.Instance)
            .IngestAsync("r", [path], s => { shards.Add(s); return Task.CompletedTask; }, default);
        Assert.Equal(17, summary.Records);
        Assert.Equal(14, summary.Pages); // 12 English pages, the Shift_JIS page and the WET text
        Assert.Equal(1, summary.Skipped["http-404"]);
        Assert.Equal(1, summary.Skipped["content-type"]);
        Assert.Equal(1, summary.Skipped["record-warcinfo"]);
        Assert.Equal(3, shards.Count);
        var pages = new List<RawPage>();
        foreach (var shard in shards) pages.AddRange(await store.ReadParquetAsync<RawPage>(shard));
        var sjis = pages.Single(p => p.Url.EndsWith("sjis.html"));
        Assert.Equal("shift_jis", sjis.Charset);
        Assert.Contains("Debian", sjis.Html);
        Assert.Contains("の", sjis.Html);
        Assert.StartsWith($"warc:{Path.GetFileName(path)}@", sjis.Source);
        var english = pages.First(p => p.Url.EndsWith(".html") && p.Url.Contains("/en/"));
        Assert.Equal("en", english.LanguageHint);
        Assert.True(english.OutLinks > 0);
        Assert.Equal("text/plain", pages.Single(p => p.Url.EndsWith("/wet")).ContentType);

        // Shards also roll by size: with a small character budget every shard stays near it.
        var small = new List<ShardRef>();
        await new WarcIngester(new CrawlOptions { PagesPerShard = 1000, CharsPerShard = 20_000 }, store, ledger, NullLogger.Instance)
            .IngestAsync("r-size", [path], s => { small.Add(s); return Task.CompletedTask; }, default);
        Assert.True(small.Count >= 3, $"{small.Count} shards");
        foreach (var shard in small.SkipLast(1))
        {
            var rows = await store.ReadParquetAsync<RawPage>(shard);
            Assert.True(rows.Sum(p => (long)p.Html.Length) - rows[^1].Html.Length < 20_000);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_corrupt_record_is_skipped_naming_file_and_offset_and_the_rest_is_read(bool gzip)
    {
        var path = BuildWarc(gzip ? "c.warc.gz" : "c.warc", gzip);
        var (clean, _) = ReadAll(path);
        var bytes = File.ReadAllBytes(path);
        // Damage the fourth record in its middle.
        var victim = clean[3];
        var middle = (int)((victim.Offset + clean[4].Offset) / 2);
        for (var i = 0; i < 64; i++) bytes[middle + i] ^= 0x5A;
        if (!gzip) "XXXX"u8.CopyTo(bytes.AsSpan((int)victim.Offset)); // and its version line
        // And cut the last record short.
        var truncated = bytes[..^40];
        File.WriteAllBytes(path, truncated);

        var (records, errors) = ReadAll(path);
        Assert.NotEmpty(errors);
        Assert.Contains(errors, e => e.Offset == victim.Offset && e.File == path);
        Assert.Contains(errors, e => e.Offset == clean[^1].Offset);
        Assert.DoesNotContain(records, r => r.Offset == victim.Offset);
        // Everything else is read: the records after the damaged one too.
        Assert.Equal(clean.Count - 2, records.Count);
        Assert.Contains(records, r => r.Offset == clean[4].Offset);
    }

    [Fact]
    public void No_damage_to_a_gzip_archive_escapes_the_reader_as_an_exception()
    {
        // CI once met a damaged member whose Huffman table made SharpZipLib throw IndexOutOfRangeException. The
        // archive's bytes vary (record ids are random), so the damage is tried at many seeded places and patterns.
        var path = BuildWarc("f.warc.gz", gzip: true);
        var original = File.ReadAllBytes(path);
        var (clean, _) = ReadAll(path);
        var random = new Random(17);
        for (var trial = 0; trial < 300; trial++)
        {
            var bytes = (byte[])original.Clone();
            var at = random.Next(0, bytes.Length - 16);
            for (var i = 0; i < 1 + trial % 16; i++) bytes[at + i] = (byte)random.Next(256);
            File.WriteAllBytes(path, bytes);
            var (records, errors) = ReadAll(path);
            Assert.True(records.Count + errors.Count > 0, $"trial {trial}");
            Assert.True(records.Count >= clean.Count - 2 || errors.Count > 0, $"trial {trial}: lost records silently");
        }
    }

    [Fact]
    public async Task An_interrupted_ingestion_resumes_without_duplicates()
    {
        var path = BuildWarc("d.warc.gz", gzip: true);
        var store = new ShardStore(_root);
        var ledger = new Ledger(Path.Combine(_root, "ledger.db"));
        var options = new CrawlOptions { PagesPerShard = 5 };
        using var cancel = new CancellationTokenSource();
        var first = new List<ShardRef>();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new WarcIngester(options, store, ledger, NullLogger.Instance)
            .IngestAsync("r", [path], s => { first.Add(s); cancel.Cancel(); return Task.CompletedTask; }, cancel.Token));
        Assert.Single(first);
        var second = new List<ShardRef>();
        await new WarcIngester(options, store, ledger, NullLogger.Instance).IngestAsync("r", [path], s => { second.Add(s); return Task.CompletedTask; }, default);
        var urls = new List<string>();
        foreach (var shard in first.Concat(second)) urls.AddRange((await store.ReadParquetAsync<RawPage>(shard)).Select(p => p.Url));
        Assert.Equal(14, urls.Count);
        Assert.Equal(14, urls.Distinct().Count());
    }

    [Fact]
    public async Task Files_with_the_same_name_in_different_folders_are_different_inputs()
    {
        // Regression: progress was keyed by the base name, so b/site.warc was skipped after a/site.warc.
        Directory.CreateDirectory(Path.Combine(_root, "a"));
        Directory.CreateDirectory(Path.Combine(_root, "b"));
        var a = BuildWarc("a/site.warc", gzip: false);
        var bPath = Path.Combine(_root, "b", "site.warc");
        using (var writer = new WarcWriter(File.Create(bPath), gzip: false))
        {
            var date = new DateTime(2026, 11, 2, 0, 0, 0, DateTimeKind.Utc);
            for (var i = 0; i < 40; i++) writer.WriteResponse($"http://other.test/p{i}.html", date, 200, "text/html", System.Text.Encoding.UTF8.GetBytes($"<p>page {i}</p>"));
        }
        var store = new ShardStore(_root);
        var ledger = new Ledger(Path.Combine(_root, "ledger.db"));
        var shards = new List<ShardRef>();
        var ingester = new WarcIngester(new CrawlOptions { PagesPerShard = 5 }, store, ledger, NullLogger.Instance);
        await ingester.IngestAsync("r", [a], s => { shards.Add(s); return Task.CompletedTask; }, default);
        var second = await ingester.IngestAsync("r", [bPath], s => { shards.Add(s); return Task.CompletedTask; }, default);
        Assert.Equal(40, second.Pages);
        var urls = new List<string>();
        foreach (var shard in shards) urls.AddRange((await store.ReadParquetAsync<RawPage>(shard)).Select(p => p.Url));
        Assert.Equal(14 + 40, urls.Distinct().Count());
        Assert.Equal(shards.Count, shards.Select(s => s.Uri).Distinct().Count());
    }

    /// <summary>Rewrites the Content-Length of the record at <paramref name="offset"/> of a plain .warc.</summary>
    private static void RewriteContentLength(string path, int offset, Func<long, long> change)
    {
        var text = System.Text.Encoding.Latin1.GetString(File.ReadAllBytes(path));
        var at = text.IndexOf("Content-Length: ", offset, StringComparison.Ordinal);
        var end = text.IndexOf("\r\n", at, StringComparison.Ordinal);
        text = text[..at] + $"Content-Length: {change(long.Parse(text[(at + 16)..end]))}" + text[end..];
        File.WriteAllBytes(path, System.Text.Encoding.Latin1.GetBytes(text));
    }

    [Fact]
    public void An_absurd_content_length_loses_only_its_own_record()
    {
        // Regression: the reader skipped Content-Length bytes past the end of the file, dropping every later record.
        var path = BuildWarc("e.warc", gzip: false);
        var (clean, _) = ReadAll(path);
        var victim = (int)clean[2].Offset;
        RewriteContentLength(path, victim, _ => 999999999999);

        var (records, errors) = ReadAll(path);
        Assert.Contains(errors, e => e.Offset == victim && e.Reason.Contains("past the end of the file"));
        Assert.Equal(clean.Count - 1, records.Count);
        Assert.Equal(clean.Skip(3).Select(r => r.TargetUri), records.Skip(2).Select(r => r.TargetUri));
    }

    [Theory]
    [InlineData(100)]
    [InlineData(-7)]
    public void A_wrong_content_length_inside_the_file_loses_only_its_own_record(int error)
    {
        // Regression (#26): in a plain .warc, a Content-Length too long by less than the next record kept the bad
        // record (with the next one's start as its tail) and lost the next, valid one.
        var path = BuildWarc("g.warc", gzip: false);
        var (clean, _) = ReadAll(path);
        var victim = (int)clean[2].Offset;
        RewriteContentLength(path, victim, length => length + error);

        var (records, errors) = ReadAll(path);
        Assert.Equal(victim, Assert.Single(errors).Offset);
        Assert.Equal(clean.Where(r => r.Offset != victim).Select(r => r.TargetUri), records.Select(r => r.TargetUri));
    }

    [Fact]
    public void A_gzip_member_that_fails_mid_inflate_loses_only_its_own_record()
    {
        // Regression (seen as a flaky test): when inflating a damaged member threw before its end, the reader had
        // already consumed the buffered bytes after it and resumed past them, losing the records that followed.
        var path = BuildWarc("f.warc.gz", gzip: true);
        var (clean, _) = ReadAll(path);
        var bytes = File.ReadAllBytes(path);
        var victim = (int)clean[2].Offset;
        Assert.Equal(0, bytes[victim + 3]); // no optional gzip header fields: the deflate data starts at byte 10
        bytes[victim + 10] = 0x07;          // BFINAL=1, BTYPE=11: a reserved block type, an error at once
        File.WriteAllBytes(path, bytes);
        var (records, errors) = ReadAll(path);
        Assert.Equal(victim, Assert.Single(errors).Offset);
        Assert.Equal(clean.Where(r => r.Offset != victim).Select(r => r.Offset), records.Select(r => r.Offset));
    }

    [Fact]
    public void Parse_errors_do_not_carry_terminal_escapes()
    {
        var path = Path.Combine(_root, "escape.warc");
        File.WriteAllBytes(path, System.Text.Encoding.Latin1.GetBytes("WARC/1.0\r\nBad\u001b[2J\u001b]0;owned\u0007 line\r\n\r\n"));
        var (_, errors) = ReadAll(path);
        var error = Assert.Single(errors).ToString();
        Assert.DoesNotContain('\u001b', error);
        Assert.DoesNotContain('\u0007', error);
        Assert.Contains("\\u001B[2J", error);
    }

    [Fact]
    public async Task A_crawl_request_names_warc_files_under_the_data_root_only()
    {
        // Regression: CrawlRequested.WarcFiles carried raw host paths, so a message could make the crawler read any file.
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Pipeline:DataRoot"] = _root });
        builder.Services.AddPipeline(builder.Configuration, [new CrawlerModule()]);
        using var host = builder.Build();
        await host.StartAsync();
        var worker = host.Services.GetRequiredService<CrawlWorker>();
        var ledger = host.Services.GetRequiredService<Ledger>();
        BuildWarc("inside.warc", gzip: false);
        Assert.Null(worker.TryStart(new CrawlRequested("outside", [], 0, ["/etc/hostname"])));
        Assert.Null(worker.TryStart(new CrawlRequested("inside", [], 0, ["inside.warc"])));
        foreach (var (run, state) in new[] { ("outside", "failed"), ("inside", "completed") })
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            string? json;
            while ((json = ledger.Documents.Get(LedgerKeys.Job(JobKinds.Crawl, run))) is null || !json.Contains($"\"State\":\"{state}\""))
            {
                Assert.True(DateTime.UtcNow < deadline, $"crawl {run}: {json}");
                await Task.Delay(50);
            }
            if (state == "failed") Assert.Contains("absolute paths are not allowed", json);
        }
        Assert.Equal(14, ledger.Artifacts.Shards("inside", "crawl").Sum(s => s.Rows));
        await host.StopAsync();
    }

    [Fact]
    public void A_missing_file_is_a_clear_error() =>
        Assert.Contains("does-not-exist.warc", Assert.Throws<FileNotFoundException>(() => new WarcReader().Read(Path.Combine(_root, "does-not-exist.warc"), _ => { }).ToList()).Message);

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
