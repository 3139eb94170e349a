using Pipeline.Contracts.V1;
using Pipeline.Tests.Shared;
using Pipeline.Runtime;

namespace Pipeline.Hosting.Tests;

/// <summary>
/// What every ledger backend must do, run against both: SQLite (the embedded default) and PostgreSQL (several hosts).
/// The PostgreSQL server is the one .ci/run starts (scripts/postgres-local.sh); PIPELINE_TEST_POSTGRES overrides it.
/// </summary>
public abstract class LedgerContractTests : IDisposable
{
    protected abstract Ledger OpenLedger();

    private static ShardRef Shard(string id, long rows = 3) => new(id, $"runs/r/clean/{id}.parquet", "ab12", rows, 10, "clean", "cfg", ["in"], "run");

    [Fact]
    public void A_completed_input_and_its_shards_are_there_for_the_next_process()
    {
        var ledger = OpenLedger();
        Assert.False(ledger.Artifacts.IsProcessed("clean", "in"));
        ledger.Artifacts.CompleteInput("clean", "in", "run", [Shard("out-1"), Shard("out-2", rows: 5_000_000_000)], new { Kept = 3 });

        var reopened = OpenLedger();
        Assert.True(reopened.Artifacts.IsProcessed("clean", "in"));
        var shards = reopened.Artifacts.Shards("run", "clean");
        Assert.Equal(["out-1", "out-2"], shards.Select(s => s.ShardId).Order());
        var big = shards.Single(s => s.ShardId == "out-2");
        Assert.Equal((5_000_000_000L, 10L, "ab12", "cfg", "runs/r/clean/out-2.parquet"), (big.Rows, big.Bytes, big.Sha256, big.ConfigHash, big.Uri));
        Assert.Equal(["in"], big.ParentShardIds);
        Assert.Equal("""{"Kept":3}""", Assert.Single(reopened.Artifacts.Stats("run", "clean")));
        Assert.Equal("""{"Kept":3}""", reopened.Artifacts.ShardExtra("out-1"));
        Assert.Equal(2, reopened.Artifacts.Pending("run", "clean", "dedup").Count);
    }

    [Fact]
    public void A_failed_input_is_listed_until_it_is_done()
    {
        var ledger = OpenLedger();
        ledger.Artifacts.FailInput("clean", "bad", "run", "checksum mismatch");
        Assert.False(ledger.Artifacts.IsProcessed("clean", "bad"));
        Assert.Equal(("bad", "checksum mismatch"), Assert.Single(ledger.Artifacts.Failures("run", "clean")));
        ledger.Artifacts.CompleteInput("clean", "bad", "run", []);
        Assert.True(ledger.Artifacts.IsProcessed("clean", "bad"));
        Assert.Empty(ledger.Artifacts.Failures("run", "clean"));
    }

    [Fact]
    public async Task Hosts_racing_on_one_input_record_it_once()
    {
        var ledgers = Enumerable.Range(0, 6).Select(_ => OpenLedger()).ToList();
        await Task.WhenAll(ledgers.Select(l => Task.Run(() =>
        {
            for (var i = 0; i < 20; i++)
                l.Artifacts.CompleteInput("clean", $"in-{i}", "run", [Shard($"out-{i}")], new { Kept = i });
        })));
        var ledger = OpenLedger();
        Assert.Equal(20, ledger.Artifacts.Shards("run", "clean").Count);
        Assert.Equal(20, ledger.Artifacts.Stats("run", "clean").Count);

        var winners = await Task.WhenAll(ledgers.Select((l, i) => Task.Run(() => l.Documents.SetIfAbsent("owner:x", $"host-{i}"))));
        Assert.Equal(1, winners.Count(w => w));
        Assert.Equal($"host-{Array.IndexOf(winners, true)}", ledger.Documents.Get("owner:x"));
    }

    [Fact]
    public async Task Hosts_claiming_overlapping_hashes_end_with_the_smallest_id_and_every_copy_kept_before_is_displaced()
    {
        // Six hosts claim overlapping sets (in different orders, more than one batch each) at once; which host has the
        // smallest id of a hash varies by hash. Every hash ends held by its smallest id, whatever order the claims
        // took, and each other copy either lost at its claim or is among the displaced: no two copies stay kept.
        var ledgers = Enumerable.Range(0, 6).Select(_ => OpenLedger()).ToList();
        var sets = ledgers.Select((_, i) => Enumerable.Range(i * 300, 1_200).Select(n => (long)n * 7919 - 4_000_000_000L))
            .Select((set, i) => (i % 2 == 0 ? set.Reverse() : set).ToList()).ToList();
        static string Id(long hash, int host) => $"{(hash + host) % 6 + 6}-{hash}-{host}";
        var answers = await Task.WhenAll(ledgers.Select((l, i) => Task.Run(() => sets[i].Chunk(700)
            .Select(batch => l.Claims.Claim("r", batch, batch.Select(h => Id(h, i)).ToList(), $"shard-{i}")).ToList())));
        var kept = new HashSet<string>();
        var displaced = new HashSet<string>();
        for (var i = 0; i < sets.Count; i++)
        {
            var claimed = sets[i].Chunk(700).ToList();
            for (var b = 0; b < claimed.Count; b++)
            {
                for (var j = 0; j < claimed[b].Length; j++)
                    if (answers[i][b].Kept[j]) kept.Add(Id(claimed[b][j], i));
                displaced.UnionWith(answers[i][b].Displaced.Select(d => d.Document));
            }
        }
        var smallest = sets.SelectMany((set, i) => set.Select(h => (Hash: h, Id: Id(h, i)))).GroupBy(c => c.Hash)
            .ToDictionary(g => g.Key, g => g.Select(c => c.Id).Min(StringComparer.Ordinal)!);
        Assert.Equal(6 * 300 + 900, smallest.Count);
        Assert.Equal(smallest.Values.Order(), kept.Except(displaced).Order());
        // A repeated claim (a shard redone after a crash) keeps what it holds; the same document from another shard
        // (a page stored twice) loses to the copy that claimed first; a duplicate inside one claim is kept once.
        var first = sets[0][..3];
        var again = OpenLedger().Claims.Claim("r", [.. first, first[0]], [.. first.Select(h => Id(h, 0)), Id(first[0], 0)], "shard-0");
        Assert.Equal(first.Select(h => smallest[h]).Append(smallest[first[0]]), again.Holders);
        Assert.Equal(first.Select(h => smallest[h] == Id(h, 0)).Append(false), again.Kept);
        Assert.Empty(again.Displaced);
        Assert.All(OpenLedger().Claims.Claim("r", first, first.Select(h => smallest[h]).ToList(), "shard-other").Kept, Assert.False);
        // Another run over the same pages claims them for itself: runs side by side do not remove each other's documents.
        Assert.All(OpenLedger().Claims.Claim("other-run", sets[1], sets[1].Select(h => Id(h, 1)).ToList(), "other-shard").Kept, Assert.True);
    }

    [Fact]
    public void Superseded_documents_are_recorded_once_per_run()
    {
        var ledger = OpenLedger();
        ledger.Superseded.Add("r", "exact_dedup", [("b", "a"), ("c", "a")]);
        ledger.Superseded.Add("r", "near_dedup", [("c", "b"), ("d", "c")]);
        ledger.Superseded.Add("other", "near_dedup", [("x", "w")]);
        Assert.Equal(["b", "c", "d"], ledger.Superseded.Ids("r").Order());
        Assert.Equal(["x"], ledger.Superseded.Ids("other"));
    }

    [Fact]
    public async Task Crawl_parts_share_the_page_limit_and_end_only_when_all_are_idle_with_every_handoff_taken()
    {
        // Four parts (hosts) take pages at once: exactly the limit is granted in all.
        var ledgers = Enumerable.Range(0, 4).Select(_ => OpenLedger()).ToList();
        var granted = await Task.WhenAll(ledgers.Select((l, part) => Task.Run(() => Enumerable.Range(0, 40).Count(_ => l.CrawlParts.TakePage("r", part, 100)))));
        Assert.Equal(100, granted.Sum());
        // A restarted part counts only the pages it committed, which frees the rest.
        ledgers[0].CrawlParts.SetPages("r", 0, 0);
        Assert.True(ledgers[1].CrawlParts.TakePage("r", 1, 100));

        var ledger = ledgers[0];
        ledger.CrawlParts.SetIdle("r", 0, 0);
        Assert.False(ledger.CrawlParts.Quiescent("r", 2)); // part 1 has not said anything yet
        ledger.CrawlParts.HandOffUrls("r", 1, [("http://b/1", 1), ("http://b/2", 2), ("http://b/1", 1)]);
        ledger.CrawlParts.SetIdle("r", 1, 0);
        Assert.False(ledger.CrawlParts.Quiescent("r", 2)); // part 1 is idle but has not taken its two URLs
        Assert.Equal([("http://b/1", 1), ("http://b/2", 2)], ledger.CrawlParts.HandedOffUrls("r", 1).Order());
        ledger.CrawlParts.SetIdle("r", 1, null);
        ledger.CrawlParts.SetIdle("r", 1, 2);
        Assert.True(ledger.CrawlParts.Quiescent("r", 2));
        Assert.False(ledger.CrawlParts.Quiescent("other-run", 2));
    }

    [Fact]
    public void A_lease_has_one_holder_until_it_is_released_or_expires()
    {
        var ledger = OpenLedger();
        Assert.True(ledger.Leases.TryAcquire("dedup-index:run", "host-a", TimeSpan.FromMinutes(1)));
        Assert.False(ledger.Leases.TryAcquire("dedup-index:run", "host-b", TimeSpan.FromMinutes(1)));
        Assert.True(ledger.Leases.TryAcquire("dedup-index:run", "host-a", TimeSpan.FromMinutes(1))); // renewal
        ledger.Leases.Release("dedup-index:run", "host-b"); // not the holder: no effect
        Assert.False(ledger.Leases.TryAcquire("dedup-index:run", "host-b", TimeSpan.FromMinutes(1)));
        ledger.Leases.Release("dedup-index:run", "host-a");
        Assert.True(ledger.Leases.TryAcquire("dedup-index:run", "host-b", TimeSpan.FromMilliseconds(-1))); // already expired
        Assert.True(ledger.Leases.TryAcquire("dedup-index:run", "host-c", TimeSpan.FromMinutes(1))); // a dead holder's lease
        Assert.False(ledger.Leases.TryAcquire("dedup-index:run", "host-b", TimeSpan.FromMinutes(1)));
    }

    [Fact]
    public void Keys_are_listed_by_prefix_in_code_point_order()
    {
        var ledger = OpenLedger();
        foreach (var key in new[] { "evaluated:b", "evaluated:B", "evaluated:é", "evaluated:a", "evaluatedx", "alignment:1", "evaluated:" })
            ledger.Documents.Set(key, "v-" + key);
        ledger.Documents.Set("evaluated:a", "second");
        Assert.Equal(["evaluated:", "evaluated:B", "evaluated:a", "evaluated:b", "evaluated:é"], ledger.Documents.KeysWithPrefix("evaluated:"));
        Assert.Equal("second", ledger.Documents.Get("evaluated:a"));
        Assert.Null(ledger.Documents.Get("missing"));
    }

    [Fact]
    public void Runs_metrics_and_scores_round_trip()
    {
        var ledger = OpenLedger();
        ledger.Runs.Ensure("run", "sample", "{}");
        ledger.Runs.Ensure("run", "renamed", "{}"); // a second start keeps the first record
        ledger.Runs.SetState("run", "completed");
        ledger.Artifacts.CompleteInput("crawl", "seed", "run", [Shard("a", 3_000_000_000), Shard("b", 3_000_000_000)]);
        var run = Assert.Single(ledger.Runs.List());
        Assert.Equal(("sample", "completed"), (run.Name, run.State));
        Assert.Equal(new StageSummary("clean", 2, 6_000_000_000, 20), Assert.Single(run.Stages));
        Assert.Equal("completed", ledger.Runs.State("run"));

        ledger.Evaluations.AddMetric("run", "train", 20, "loss", 3.5);
        ledger.Evaluations.AddMetric("run", "train", 10, "loss", 4.25);
        Assert.Equal([(10L, "loss", 4.25), (20L, "loss", 3.5)], ledger.Evaluations.Metrics("run", "train"));

        ledger.Evaluations.AddEval("run", 10, "ckpt-10", "task", "1", new Dictionary<string, double> { ["acc"] = 0.25, ["acc_stderr"] = 0.01 });
        ledger.Evaluations.AddEval("run", 10, "ckpt-10", "task", "1", new Dictionary<string, double> { ["acc"] = 0.5 });
        ledger.Evaluations.AddEval("other", 5, "ckpt-5", "task", "1", new Dictionary<string, double> { ["acc"] = 0.125 });
        Assert.True(ledger.Evaluations.HasEval("ckpt-10", "task", "1"));
        Assert.False(ledger.Evaluations.HasEval("ckpt-10", "task", "2"));
        Assert.Equal([0.5, 0.01], ledger.Evaluations.Evals("run").Select(e => e.Value));
        Assert.Equal(3, ledger.Evaluations.Evals().Count);
    }

    [Fact]
    public async Task Hosts_opening_a_new_ledger_at_once_migrate_it_once()
    {
        var ledgers = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(OpenLedger)));
        Assert.All(ledgers, l => Assert.Equal(Ledger.LatestSchemaVersion, l.SchemaVersion()));
    }

    public abstract void Dispose();
}

public sealed class SqliteLedgerTests : LedgerContractTests
{
    private readonly string _root = Directory.CreateTempSubdirectory("ledger-").FullName;

    protected override Ledger OpenLedger() => new(Path.Combine(_root, "ledger.db"));

    [Fact]
    [Trait("Category", "Postgres")]
    public void A_ledger_written_before_the_schema_had_versions_migrates_in_place()
    {
        var path = Path.Combine(_root, "old.db");
        using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=false"))
        {
            db.Open();
            using var cmd = db.CreateCommand();
            // The tables as the first release created them (INTEGER/REAL columns, no schema_version).
            cmd.CommandText = """
                CREATE TABLE kv(key TEXT PRIMARY KEY, value TEXT);
                CREATE TABLE processed(stage TEXT, input_id TEXT, run_id TEXT, state TEXT, outputs TEXT, stats TEXT, error TEXT,
                    updated TEXT, PRIMARY KEY(stage, input_id));
                INSERT INTO kv VALUES('crawl-summary:run', '{}');
                INSERT INTO processed VALUES('clean', 'in', 'run', 'done', '[]', NULL, NULL, '2026-01-01');
                """;
            cmd.ExecuteNonQuery();
        }
        var ledger = new Ledger(path);
        Assert.Equal(Ledger.LatestSchemaVersion, ledger.SchemaVersion());
        Assert.Equal("{}", ledger.Documents.Get("crawl-summary:run"));
        Assert.True(ledger.Artifacts.IsProcessed("clean", "in"));
        Assert.True(ledger.Leases.TryAcquire("x", "a", TimeSpan.FromMinutes(1)));
    }

    public override void Dispose() => Directory.Delete(_root, true);
}

[Trait("Category", "Postgres")]
public sealed class PostgresLedgerTests : LedgerContractTests
{
    private readonly PostgresTestDatabase _database = new();

    protected override Ledger OpenLedger() => Ledger.PostgreSql(_database.ConnectionString);

    [Fact]
    public void Configuration_selects_postgresql_and_an_unreachable_server_is_an_error_naming_it()
    {
        var options = new PipelineOptions { DataRoot = "/nonexistent", Ledger = { ConnectionString = _database.ConnectionString } };
        Assert.StartsWith("postgresql://127.0.0.1:", Ledger.Open(options.DataRoot, options.Ledger.ConnectionString).Location);
        var error = Assert.Throws<InvalidOperationException>(() => Ledger.PostgreSql("Host=127.0.0.1;Port=1;Username=postgres;Database=nowhere;Timeout=2"));
        Assert.StartsWith("ledger postgresql://127.0.0.1:1/nowhere:", error.Message);
    }

    public override void Dispose() => _database.Dispose();
}
