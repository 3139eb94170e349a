using Pipeline.Contracts.V1;
using Pipeline.Runtime;

namespace Pipeline.Hosting.Tests;

/// <summary>ShardStep with a crash between every pair of its steps, then the redelivery that follows.</summary>
public sealed class ShardStepTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("shard-step-").FullName;

    private sealed class Crash : Exception;

    private static readonly ShardRef Input = new("in-1", "shards/clean/r/in-1.parquet", "sha-in", 10, 100, "clean", "c", [], "r");

    private static StageResult Outputs() => new(
        [new ShardRef("out-1", "shards/dedup/r/out-1.parquet", "sha-1", 4, 40, "dedup", "c", ["in-1"], "r"),
         new ShardRef("out-2", "shards/dedup/r/out-2.parquet", "sha-2", 5, 50, "dedup", "c", ["in-1"], "r")], new { Kept = 9 });

    [Theory]
    [InlineData("after process")]
    [InlineData("after record")]
    [InlineData("between announcements")]
    [InlineData("after the last announcement")]
    [InlineData("none")]
    public async Task A_crash_anywhere_leaves_the_input_to_be_done_again_and_loses_no_announcement(string crashAt)
    {
        var ledger = new Ledger(Path.Combine(_root, $"{crashAt}.db"));
        var step = new ShardStep(ledger, "dedup");
        var processed = 0;
        var announced = new List<string>();
        var followedUp = new List<bool>();
        Task<StageResult> Process(bool crash)
        {
            processed++;
            return crash ? throw new Crash() : Task.FromResult(Outputs());
        }
        Func<ShardRef, object?, Task> Announce(bool crash) => (output, _) =>
        {
            if (crash && crashAt == "between announcements" && output.ShardId == "out-2") throw new Crash();
            announced.Add(output.ShardId);
            if (crash && crashAt == "after the last announcement" && output.ShardId == "out-2") throw new Crash();
            return Task.CompletedTask;
        };
        Task FollowUp(bool crash)
        {
            // What a follow-up sees: the outputs recorded, the input not yet done.
            followedUp.Add(ledger.Artifacts.Shards("r", "dedup").Count == 2 && !ledger.Artifacts.IsProcessed("dedup", "in-1"));
            return crash && crashAt == "after record" ? throw new Crash() : Task.CompletedTask;
        }

        var crashed = false;
        try
        {
            await step.RunAsync(Input, _ => crashAt == "after process" ? Process(true) : Process(false), Announce(true), default, _ => FollowUp(true));
        }
        catch (Crash)
        {
            crashed = true;
        }
        Assert.Equal(crashAt != "none", crashed);
        Assert.Equal(!crashed, ledger.Artifacts.IsProcessed("dedup", "in-1"));

        // The redelivery: done again from the start when the first attempt did not finish, skipped when it did.
        var again = await step.RunAsync(Input, _ => Process(false), Announce(false), default, _ => FollowUp(false));
        Assert.Equal(crashed, again is not null);
        Assert.True(ledger.Artifacts.IsProcessed("dedup", "in-1"));
        Assert.Equal(["out-1", "out-2"], ledger.Artifacts.Shards("r", "dedup").Select(s => s.ShardId).Order());
        Assert.Superset(new HashSet<string> { "out-1", "out-2" }, announced.ToHashSet());
        Assert.Equal("{\"Kept\":9}", ledger.Artifacts.ShardExtra("out-1"));
        Assert.All(followedUp, Assert.True);
        Assert.Equal(crashed ? 2 : 1, processed);
        // Once done, never again.
        Assert.Null(await step.RunAsync(Input, _ => Process(false), Announce(false), default));
        Assert.Equal(crashed ? 2 : 1, processed);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
