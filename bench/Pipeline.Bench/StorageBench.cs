using System.Diagnostics;
using Amazon.Runtime;
using Pipeline.Cleaner;
using Pipeline.Contracts.V1;
using Pipeline.Crawler;
using Pipeline.Dedup;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Bpe;
using Pipeline.Tokenizer;
using Pipeline.Contracts.Rows;

namespace Pipeline.Bench;

/// <summary>
/// Per-stage time with the files in the local folder versus in S3, in the same process and on the same pages: the
/// crawler's shard write, clean, dedup and tokenize, one default-sized shard (up to 1,000 pages) at a time. With S3
/// every stage runs as a host of its own (an empty folder), so it downloads its input and uploads its output, as
/// separate hosts do. Rounds alternate the order of the two modes; the median of each is printed.
/// Arguments: folder of pages (bench/build-docs-pages.py), S3 endpoint (default s3rver from scripts/s3-local.sh),
/// rounds.
/// </summary>
public static class StorageBench
{
    private sealed record Timings(double Write, double Clean, double Dedup, double Tokenize, long[] Bytes);

    public static async Task RunAsync(string[] args)
    {
        var folder = args.Length > 0 ? args[0] : "samples/site";
        var endpoint = args.Length > 1 ? args[1] : "http://127.0.0.1:4569";
        var rounds = args.Length > 2 ? int.Parse(args[2]) : 3;
        var pages = Directory.GetFiles(folder, "*.html", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select((path, i) => new RawPage
            {
                Url = $"http://docs.test/{i}", FinalUrl = $"http://docs.test/{i}", FetchTime = DateTime.UnixEpoch, Status = 200,
                ContentType = "text/html", Charset = "utf-8", CharsetSource = "header", Html = File.ReadAllText(path),
            }).ToList();
        var htmlBytes = pages.Sum(p => (long)System.Text.Encoding.UTF8.GetByteCount(p.Html));
        var root = Directory.CreateTempSubdirectory("storage-bench-").FullName;
        try
        {
            // One vocabulary for every round (training it is not storage work).
            var vocabulary = Path.Combine(root, "vocabulary");
            var sample = pages.Take(200).Select(p => TextExtractor.Extract(p.Html).Text).ToList();
            new BpeTrainer(2048).Train(sample).Save(vocabulary);
            var tokenizer = TextTokenizer.Load(vocabulary);

            var file = new List<Timings>();
            var s3 = new List<Timings>();
            for (var round = 0; round < rounds; round++)
            {
                foreach (var useS3 in round % 2 == 0 ? new[] { false, true } : [true, false])
                {
                    var place = Path.Combine(root, $"r{round}-{(useS3 ? "s3" : "file")}");
                    using var objects = useS3
                        ? new S3ObjectStore(new S3StorageOptions { Bucket = "pipeline-test", Prefix = $"bench-{Guid.NewGuid():N}", ServiceUrl = endpoint },
                            new BasicAWSCredentials("S3RVER", "S3RVER"))
                        : null;
                    // File: one folder for every stage (one host). S3: a folder per stage (a host each).
                    ShardStore Host(string name) => new(useS3 ? Path.Combine(place, name) : place, objects);
                    (useS3 ? s3 : file).Add(await RoundAsync(pages, tokenizer, Host, place));
                }
            }
            static double Median(IEnumerable<double> values) => values.Order().ElementAt(values.Count() / 2);
            Console.WriteLine($"storage: {pages.Count} pages, {htmlBytes / 1e6:F1} MB of HTML, shards of up to 1,000 pages; median of {rounds} rounds (S3: {endpoint})");
            var bytes = file[0].Bytes;
            Console.WriteLine($"shards written: raw {bytes[0] / 1e6:F1} MB, clean {bytes[1] / 1e6:F1} MB, dedup {bytes[2] / 1e6:F1} MB, tokens {bytes[3] / 1e6:F1} MB");
            Console.WriteLine("| stage | moved through S3 (MB) | file (s) | S3, a host per stage (s) | overhead |");
            Console.WriteLine("|---|---|---|---|---|");
            foreach (var (stage, pick, moved) in new (string, Func<Timings, double>, long)[]
                     {
                         ("crawl: write raw shards", t => t.Write, bytes[0]), ("clean", t => t.Clean, bytes[0] + bytes[1]),
                         ("dedup", t => t.Dedup, bytes[1] + bytes[2]), ("tokenize", t => t.Tokenize, bytes[2] + bytes[3]),
                     })
            {
                var (f, s) = (Median(file.Select(pick)), Median(s3.Select(pick)));
                Console.WriteLine($"| {stage} | {moved / 1e6:F1} | {f:F2} | {s:F2} | {100 * (s - f) / f:+0;-0}% |");
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<Timings> RoundAsync(IReadOnlyList<RawPage> pages, TextTokenizer tokenizer, Func<string, ShardStore> host, string place)
    {
        var watch = Stopwatch.StartNew();
        var crawler = host("crawler");
        var raw = new List<ShardRef>();
        foreach (var (chunk, i) in pages.Chunk(new CrawlOptions().PagesPerShard).Select((c, i) => (c, i)))
            raw.Add(await crawler.WriteParquetAsync($"shards/raw/bench/raw-{i:D5}.parquet", chunk, new ShardDescriptor($"raw-{i}", "crawl", "", [], "bench")));
        var write = watch.Elapsed.TotalSeconds;

        watch.Restart();
        var cleaner = new ShardCleaner(new CleanerOptions(), host("cleaner"));
        var clean = new List<ShardRef>();
        foreach (var shard in raw) clean.AddRange((await cleaner.ProcessAsync(shard, default)).Outputs);
        var cleanSeconds = watch.Elapsed.TotalSeconds;

        watch.Restart();
        var deduplicated = new List<ShardRef>();
        using (var dedup = new ShardDeduplicator(new DedupOptions(), host("dedup")))
            foreach (var shard in clean) deduplicated.AddRange((await dedup.ProcessAsync(shard, default)).Outputs);
        var dedupSeconds = watch.Elapsed.TotalSeconds;

        watch.Restart();
        var store = host("tokenizer");
        var corpus = new CorpusTokenizer(new TokenizerOptions(), store, new Ledger(Path.Combine(place, "tokenizer-ledger.db")));
        var tokens = new List<ShardRef>();
        foreach (var shard in deduplicated) tokens.AddRange((await corpus.ProcessAsync(shard, tokenizer, default)).Outputs);
        return new Timings(write, cleanSeconds, dedupSeconds, watch.Elapsed.TotalSeconds,
            [raw.Sum(s => s.Bytes), clean.Sum(s => s.Bytes), deduplicated.Sum(s => s.Bytes), tokens.Sum(s => s.Bytes)]);
    }
}
