using System.Diagnostics;
using Pipeline.Cleaner;
using Pipeline.Contracts.V1;
using Pipeline.Crawler;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;

namespace Pipeline.Bench;

/// <summary>
/// Peak memory of the cleaner on a raw-page shard much larger than its row groups: the shard is written in row groups
/// of Pipeline:Crawler:CharsPerRowGroup characters, then cleaned, and the process's peak working set is compared with
/// the shard's size. Arguments: shard size in MB of HTML (default 1024), row-group size in MB (default 32).
/// Run in a process of its own (the peak is the process's).
/// </summary>
public static class ShardMemoryBench
{
    public static async Task RunAsync(string[] args)
    {
        var targetMb = args.Length > 0 ? int.Parse(args[0]) : 1024;
        var groupMb = args.Length > 1 ? int.Parse(args[1]) : 32;
        var root = Directory.CreateTempSubdirectory("shard-memory-").FullName;
        try
        {
            var pages = Directory.GetFiles("samples/site", "*.html", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(File.ReadAllText).ToList();
            var store = new ShardStore(root);
            long chars = 0;
            var n = 0;
            // Pages are generated as the writer consumes them: the shard is never in memory whole, here either.
            IEnumerable<RawPage> Pages()
            {
                while (chars < targetMb * 1_000_000L)
                {
                    // Each copy differs (a number in it), so exact dedup keeps them and the cleaner does full work.
                    var html = pages[n % pages.Count].Replace("<body>", $"<body><p>copy {n}</p>");
                    chars += html.Length;
                    n++;
                    yield return new RawPage { Url = $"http://bench.test/{n}", FinalUrl = $"http://bench.test/{n}", Status = 200, ContentType = "text/html", Html = html };
                }
            }
            ShardRef shard;
            await using (var writer = store.CreateParquetWriter<RawPage>("raw/big.parquet", new ShardDescriptor("big", "crawl", "", [], "bench")))
            {
                await writer.AppendAsync(Pages(), p => p.Html.Length, groupMb * 1_000_000L);
                shard = await writer.CompleteAsync();
            }
            GC.Collect();
            using var self = Process.GetCurrentProcess();
            self.Refresh();
            var beforeMb = self.WorkingSet64 / 1e6;
            var watch = Stopwatch.StartNew();
            var result = await new ShardCleaner(new CleanerOptions { ExactDedup = false }, store).ProcessAsync(shard, default);
            var seconds = watch.Elapsed.TotalSeconds;
            self.Refresh();
            var report = (CleanReport)result.Stats!;
            Console.WriteLine($"shard-memory: raw shard of {n:N0} pages, {chars / 1e6:F0} MB of HTML ({shard.Bytes / 1e6:F0} MB of Parquet) in row groups of {groupMb} MB; " +
                              $"cleaned {report.Kept:N0} kept in {seconds:F1} s; working set {beforeMb:F0} MB before cleaning, peak {self.PeakWorkingSet64 / 1e6:F0} MB for the process");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
