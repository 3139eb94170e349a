using System.Diagnostics;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Runtime;

namespace Pipeline.Bench;

/// <summary>
/// Ledger operations per second on SQLite and on PostgreSQL, as the stages use them: for each input, the idempotency
/// check (IsProcessed) and the completion (one transaction recording an output shard and the input), by 1 and by
/// 4 concurrent workers (processes on one host share the SQLite file the same way). Arguments: [POSTGRES connection
/// string] [inputs per worker]; the database must exist and is written to (tables of a fresh ledger).
/// </summary>
public static class LedgerBench
{
    public static async Task RunAsync(string[] args)
    {
        var postgres = args.Length > 0 ? args[0] : "Host=127.0.0.1;Port=55432;Username=postgres;Database=postgres";
        var inputs = args.Length > 1 ? int.Parse(args[1]) : 2_000;
        var folder = Directory.CreateTempSubdirectory("ledger-bench-").FullName;
        try
        {
            Console.WriteLine("| backend | workers | inputs | check + complete per second |");
            Console.WriteLine("|---|---|---|---|");
            foreach (var workers in new[] { 1, 4 })
            {
                var sqlite = await MeasureAsync(() => new Ledger(Path.Combine(folder, $"ledger-{workers}.db")), workers, inputs);
                Console.WriteLine($"| SQLite (WAL) | {workers} | {workers * inputs:N0} | {sqlite:N0} |");
                var pg = await MeasureAsync(() => Ledger.PostgreSql(postgres), workers, inputs);
                Console.WriteLine($"| PostgreSQL 15 (loopback) | {workers} | {workers * inputs:N0} | {pg:N0} |");
            }
        }
        finally
        {
            Directory.Delete(folder, true);
        }
    }

    private static async Task<double> MeasureAsync(Func<Ledger> open, int workers, int inputs)
    {
        var run = "bench-" + Guid.NewGuid().ToString("N")[..8];
        var ledgers = Enumerable.Range(0, workers).Select(_ => open()).ToList();
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(ledgers.Select((ledger, w) => Task.Run(() =>
        {
            for (var i = 0; i < inputs; i++)
            {
                var input = $"{run}-in-{w}-{i}";
                if (ledger.Artifacts.IsProcessed("clean", input)) continue;
                var output = new ShardRef($"{run}-out-{w}-{i}", $"shards/clean/{run}/{w}-{i}.parquet", "00", 100, 10_000, "clean", "cfg", [input], run);
                ledger.Artifacts.CompleteInput("clean", input, run, [output], new { Input = 100, Kept = 60 });
            }
        })));
        return workers * inputs / watch.Elapsed.TotalSeconds;
    }
}
