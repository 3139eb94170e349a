using System.Collections.Concurrent;
using System.Diagnostics;
using Pipeline.Cleaner;
using Pipeline.Contracts.V1;
using Pipeline.Crawler;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;

namespace Pipeline.Bench;

/// <summary>
/// Cleaner throughput with 1 and with 2 competing cleaners taking shards from one queue (as two `serve cleaner`
/// processes on one host do from RabbitMQ), sharing the host's folder and its exact-dedup index. A cleaner already
/// spreads a row group over the cores (Parallel.For), so on 2 cores a second cleaner can only fill the gaps between
/// row groups and shards. Arguments: folder of pages (bench/build-docs-pages.py), pages per shard, rounds.
/// </summary>
public static class CompetingCleanersBench
{
    public static async Task RunAsync(string[] args)
    {
        var folder = args.Length > 0 ? args[0] : "samples/site";
        var perShard = args.Length > 1 ? int.Parse(args[1]) : 100;
        var rounds = args.Length > 2 ? int.Parse(args[2]) : 3;
        var root = Directory.CreateTempSubdirectory("cleaners-bench-").FullName;
        try
        {
            var source = new ShardStore(Path.Combine(root, "crawler"));
            var pages = Directory.GetFiles(folder, "*.html", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
                .Select((path, i) => new RawPage { Url = $"http://docs.test/{i}", FinalUrl = $"http://docs.test/{i}", Status = 200, ContentType = "text/html", Html = File.ReadAllText(path) })
                .ToList();
            var shards = new List<ShardRef>();
            foreach (var (chunk, i) in pages.Chunk(perShard).Select((c, i) => (c, i)))
                shards.Add(await source.WriteParquetAsync($"shards/raw/bench/raw-{i:D5}.parquet", chunk, new ShardDescriptor($"raw-{i}", "crawl", "", [], "bench")));
            var megabytes = pages.Sum(p => (long)System.Text.Encoding.UTF8.GetByteCount(p.Html)) / 1e6;
            await CleanAsync(shards, source, Path.Combine(root, "warm-up"), 1); // JIT and regex construction

            var results = new Dictionary<int, List<double>> { [1] = [], [2] = [] };
            for (var round = 0; round < rounds; round++)
                foreach (var cleaners in round % 2 == 0 ? new[] { 1, 2 } : [2, 1])
                    results[cleaners].Add(await CleanAsync(shards, source, Path.Combine(root, $"r{round}-{cleaners}"), cleaners));
            Console.WriteLine($"cleaners: {pages.Count} pages ({megabytes:F1} MB of HTML) in {shards.Count} shards of {perShard}, {Environment.ProcessorCount} cores, median of {rounds} rounds");
            Console.WriteLine("| cleaners | seconds | MB/s | speed-up |");
            Console.WriteLine("|---|---|---|---|");
            var one = results[1].Order().ElementAt(rounds / 2);
            foreach (var (cleaners, seconds) in results.Select(kv => (kv.Key, kv.Value.Order().ElementAt(rounds / 2))))
                Console.WriteLine($"| {cleaners} | {seconds:F2} | {megabytes / seconds:F1} | {one / seconds:F2}x |");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<double> CleanAsync(IReadOnlyList<ShardRef> shards, ShardStore source, string place, int cleaners)
    {
        var queue = new ConcurrentQueue<ShardRef>(shards);
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, cleaners).Select(c => Task.Run(async () =>
        {
            var cleaner = new ShardCleaner(new CleanerOptions(), new ShardStore(place));
            while (queue.TryDequeue(out var shard)) await cleaner.ProcessAsync(shard, default, source);
        })));
        return watch.Elapsed.TotalSeconds;
    }
}
