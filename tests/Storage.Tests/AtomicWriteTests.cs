namespace Pipeline.Storage.Tests;

public sealed class AtomicWriteTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("atomic-").FullName;

    [Fact]
    public async Task Writers_of_one_path_at_once_each_leave_a_whole_file_and_no_temporary_name()
    {
        // Regression (#26): five writers shared fixed ".tmp" names, so two at once corrupted or deleted each other's.
        var path = Path.Combine(_root, "sub", "manifest.json");
        var contents = Enumerable.Range(0, 16).Select(i => new string((char)('a' + i), 200_000 + i)).ToList();
        await Task.WhenAll(contents.Select(content => Task.Run(() => AtomicWrite.Text(path, content))));
        Assert.Contains(File.ReadAllText(path), contents);
        Assert.Equal([path], Directory.GetFileSystemEntries(Path.GetDirectoryName(path)!));
    }

    [Fact]
    public async Task A_write_that_fails_keeps_the_old_content_and_leaves_nothing_behind()
    {
        var path = Path.Combine(_root, "report.md");
        AtomicWrite.Text(path, "old");
        await Assert.ThrowsAsync<IOException>(() => AtomicWrite.FileAsync(path, async stream =>
        {
            await stream.WriteAsync("half of the new"u8.ToArray());
            throw new IOException("no space left on device");
        }));
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFileSystemEntries(_root));
    }

    [Fact]
    public void A_folder_is_replaced_whole_and_a_killed_write_leaves_only_a_temporary_name_that_is_cleared()
    {
        var folder = Path.Combine(_root, "step-0000010");
        AtomicWrite.Folder(folder, temp => File.WriteAllText(Path.Combine(temp, "model.bin"), "old"));
        Assert.Throws<InvalidOperationException>(() => AtomicWrite.Folder(folder, temp =>
        {
            File.WriteAllText(Path.Combine(temp, "model.bin"), "half");
            throw new InvalidOperationException("killed");
        }));
        Assert.Equal("old", File.ReadAllText(Path.Combine(folder, "model.bin")));
        Assert.Equal([folder], Directory.GetFileSystemEntries(_root));

        Assert.Equal(3, AtomicWrite.Folder(folder, temp =>
        {
            File.WriteAllText(Path.Combine(temp, "model.bin"), "new");
            File.WriteAllText(Path.Combine(temp, "checkpoint.json"), "{}");
            return 3;
        }));
        Assert.Equal(["checkpoint.json", "model.bin"], Directory.GetFiles(folder).Select(Path.GetFileName).Order());
        Assert.Equal("new", File.ReadAllText(Path.Combine(folder, "model.bin")));

        // What a process killed mid-write leaves (its temporary folder and file) is recognised and removed.
        var leftFolder = AtomicWrite.TempPathFor(Path.Combine(_root, "step-0000020"));
        Directory.CreateDirectory(leftFolder);
        File.WriteAllText(AtomicWrite.TempPathFor(Path.Combine(_root, "eval.md")), "half");
        AtomicWrite.RemoveLeftovers(_root);
        Assert.Equal([folder], Directory.GetFileSystemEntries(_root));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
