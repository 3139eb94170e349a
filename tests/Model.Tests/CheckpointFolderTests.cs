namespace Pipeline.Model.Tests;

public sealed class CheckpointFolderTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("checkpoints-").FullName;

    [Fact]
    public void A_resumed_run_removes_what_a_failed_save_left_half_written()
    {
        // Regression (#26): after ENOSPC a step-N.tmp-PID folder stayed behind for good (each save removed only its own PID's).
        var whole = Directory.CreateDirectory(Path.Combine(_root, "step-0000010")).FullName;
        File.WriteAllText(Path.Combine(whole, "checkpoint.json"), "{}");
        var partial = Directory.CreateDirectory(Path.Combine(_root, "step-0000020.tmp-4242")).FullName;
        File.WriteAllText(Path.Combine(partial, "model.bin"), "half");
        var killed = Directory.CreateDirectory(Storage.AtomicWrite.TempPathFor(Path.Combine(_root, "step-0000030"))).FullName;
        Checkpoints.RemovePartial(_root);
        Assert.False(Directory.Exists(partial));
        Assert.False(Directory.Exists(killed));
        Assert.Equal([whole], Checkpoints.List(_root));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
