using System.Diagnostics;
using System.Text;
using Pipeline.Cleaner;
using Pipeline.Contracts.V1;
using Pipeline.Dedup;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;

namespace Pipeline.Bench;

/// <summary>
/// Dedup quality and speed on documents of about 2 KB built from the real corpus (bench/build-corpus.py):
/// precision and recall against brute-force exact Jaccard on a labelled set of near-duplicates with known edits;
/// signature + index throughput on one core; time per shard as the persisted index grows.
/// Arguments: data folder, largest index size for the scaling curve.
/// </summary>
public static class DedupBench
{
    public static async Task RunAsync(string[] args)
    {
        var data = args.Length > 0 ? args[0] : "bench/data";
        var largest = args.Length > 1 ? int.Parse(args[1]) : 200_000;
        if (args.Length > 3) Options = new DedupOptions { Bands = int.Parse(args[2]), Rows = int.Parse(args[3]) };
        if (args.Length > 4) Options = new DedupOptions { Bands = Options.Bands, Rows = Options.Rows, SketchSize = int.Parse(args[4]) };
        var lines = File.ReadAllLines(Path.Combine(data, "corpus.txt"));
        var docs = Documents(lines).ToList();
        Console.WriteLine($"dedup: {docs.Count:N0} real documents of ~2 KB ({docs.Count(d => d.Language == "ja"):N0} Japanese)");
        await QualityAsync(docs.Take(1500).ToList());
        Throughput(docs.Take(20_000).ToList());
        if (largest > 0) await ScalingAsync(lines, largest);
    }

    private static DedupOptions Options { get; set; } = new();

    /// <summary>Consecutive paragraphs joined until about 2 KB of UTF-8, each labelled with its language.</summary>
    internal static IEnumerable<CleanDocument> Documents(string[] lines)
    {
        var builder = new StringBuilder();
        var n = 0;
        foreach (var line in lines)
        {
            builder.AppendLine(line);
            if (Encoding.UTF8.GetByteCount(builder.ToString()) < 2000) continue;
            var text = builder.ToString();
            builder.Clear();
            yield return new CleanDocument { Id = $"d{n++}", Text = text, Language = LanguageIdentifier.Identify(text).Language };
        }
    }

    private static string Edit(string text, double rate, Random random, bool characters)
    {
        if (characters) return new string(text.Select(c => random.NextDouble() < rate ? (char)('ぁ' + random.Next(80)) : c).ToArray());
        return string.Join(' ', text.Split(' ').Select(w => random.NextDouble() < rate ? "x" + random.Next(100_000) : w));
    }

    private static async Task QualityAsync(List<CleanDocument> bases)
    {
        var random = new Random(42);
        double[] rates = [0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3];
        var variants = bases.Take(600).Select((d, i) => new CleanDocument
        {
            Id = $"v{i}-of-{d.Id}", Language = d.Language, Text = Edit(d.Text, rates[i % rates.Length], random, d.Language == "ja"),
        }).ToList();
        var all = bases.Concat(variants).OrderBy(_ => random.Next()).ToList();
        var hasher = new MinHasher(Options);
        var sets = all.Select(d => hasher.Shingles(d.Text, d.Language).Distinct().Order().ToArray()).ToArray();
        var index = all.Select((d, i) => (d.Id, i)).ToDictionary(x => x.Id, x => x.i);

        foreach (var verify in new[] { true, false })
        {
            var root = Directory.CreateTempSubdirectory("dedup-q-").FullName;
            var store = new ShardStore(root);
            var options = new DedupOptions { Verify = verify, Bands = Options.Bands, Rows = Options.Rows, SketchSize = Options.SketchSize };
            var input = await store.WriteParquetAsync("in.parquet", all, new ShardDescriptor("q", "clean", "", [], "q"));
            var result = await new ShardDeduplicator(options, store).ProcessAsync(input, default);
            var pairs = File.Exists(store.Resolve(result.Outputs[0].Uri.Replace("dedup-", "duplicates-")))
                ? await store.ReadParquetUncheckedAsync<DuplicatePair>(result.Outputs[0].Uri.Replace("dedup-", "duplicates-"))
                : [];
            var removed = pairs.Select(p => p.RemovedId).ToHashSet();
            var correct = pairs.Count(p => Jaccard(sets[index[p.RemovedId]], sets[index[p.KeptId]]) >= options.Threshold);
            // A document is a true duplicate when an earlier document is at least 0.8 similar to it.
            var truth = 0;
            var found = 0;
            for (var i = 0; i < all.Count; i++)
            {
                var duplicate = false;
                for (var j = 0; j < i && !duplicate; j++) duplicate = Jaccard(sets[i], sets[j]) >= options.Threshold;
                if (!duplicate) continue;
                truth++;
                if (removed.Contains(all[i].Id)) found++;
            }
            Console.WriteLine($"dedup quality (threshold {options.Threshold}, {options.Bands}x{options.Rows}, verify {verify}, sketch {options.SketchSize}): {all.Count} documents, {truth} true near-duplicates; " +
                              $"precision {(pairs.Count == 0 ? 1 : (double)correct / pairs.Count):F3}, recall {(truth == 0 ? 1 : (double)found / truth):F3}");
            Directory.Delete(root, true);
        }
    }

    private static double Jaccard(ulong[] a, ulong[] b)
    {
        int i = 0, j = 0, same = 0;
        while (i < a.Length && j < b.Length)
        {
            if (a[i] == b[j]) { same++; i++; j++; }
            else if (a[i] < b[j]) i++;
            else j++;
        }
        return (double)same / (a.Length + b.Length - same);
    }

    private static void Throughput(List<CleanDocument> docs)
    {
        var options = Options;
        var hasher = new MinHasher(options);
        var bytes = docs.Sum(d => (long)Encoding.UTF8.GetByteCount(d.Text));
        var watch = Stopwatch.StartNew();
        var signatures = docs.Select(d => hasher.Fingerprint(d.Text, d.Language)).ToList();
        var signing = watch.Elapsed.TotalSeconds;
        var root = Directory.CreateTempSubdirectory("dedup-t-").FullName;
        using var index = new LshIndex(Path.Combine(root, "lsh.db"), options.Bands, options.Rows);
        watch.Restart();
        var added = new List<(string, uint[], long[])>();
        for (var i = 0; i < docs.Count; i++)
        {
            var keys = index.BandKeys(signatures[i]);
            foreach (var candidate in index.Candidates(keys)) hasher.Similarity(signatures[i], index.Get(candidate).Signature);
            added.Add((docs[i].Id, signatures[i], keys));
        }
        index.AddAll(added, "t");
        var indexing = watch.Elapsed.TotalSeconds;
        Console.WriteLine($"dedup throughput on one core: {docs.Count:N0} documents, {bytes / 1e6:F1} MB: signatures {bytes / 1e6 / signing:F1} MB/s, " +
                          $"index lookups + inserts {docs.Count / indexing:F0} documents/s, together {bytes / 1e6 / (signing + indexing):F1} MB/s ({docs.Count / (signing + indexing):F0} documents/s)");
        Directory.Delete(root, true);
    }

    private static async Task ScalingAsync(string[] lines, int largest)
    {
        const int perShard = 10_000;
        var root = Directory.CreateTempSubdirectory("dedup-s-").FullName;
        var store = new ShardStore(root);
        var dedup = new ShardDeduplicator(Options, store);
        var random = new Random(7);
        Console.WriteLine("| index size (documents) | seconds for the next 10,000-document shard | of which removed as near-duplicates |");
        Console.WriteLine("|---:|---:|---:|");
        for (var shard = 0; shard * perShard < largest; shard++)
        {
            // Unique synthetic documents: random real paragraphs in random order, about 2 KB each.
            var docs = new List<CleanDocument>(perShard);
            for (var i = 0; i < perShard; i++)
            {
                var builder = new StringBuilder();
                while (builder.Length < 700) builder.AppendLine(lines[random.Next(lines.Length)]);
                docs.Add(new CleanDocument { Id = $"s{shard}-{i}", Text = builder.ToString(), Language = "en" });
            }
            var input = await store.WriteParquetAsync($"in/s{shard}.parquet", docs, new ShardDescriptor($"s{shard}", "clean", "", [], "s"));
            var watch = Stopwatch.StartNew();
            var result = await dedup.ProcessAsync(input, default);
            var size = shard * perShard;
            if (size == 0 || size == 10_000 || size == 20_000 || size == 50_000 || size % 100_000 == 0 || (shard + 1) * perShard >= largest)
                Console.WriteLine($"| {size:N0} | {watch.Elapsed.TotalSeconds:F2} | {((DedupStats)result.Stats!).Removed:N0} |");
            File.Delete(store.Resolve(input.Uri));
        }
        using (var index = new LshIndex(dedup.IndexPath("s"), Options.Bands, Options.Rows))
        {
            var count = index.Count;
            var disk = index.Size.Disk;
            index.Candidates(new long[Options.Bands]).ToList(); // loads the band table
            var memory = index.Size.Memory;
            Console.WriteLine($"index: {count:N0} documents, {disk / 1e6:F0} MB on disk ({disk / count:N0} bytes per document), band table {memory / 1e6:F0} MB in memory ({memory / count:N0} bytes per document)");
        }
        Directory.Delete(root, true);
    }
}
