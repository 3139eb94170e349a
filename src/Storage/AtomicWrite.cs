namespace Pipeline.Storage;

/// <summary>
/// The one way the project puts a file or a folder in place: written under a temporary name of its own beside the
/// final path (the same directory, so the rename is atomic), flushed to disk, then renamed over the final name. A
/// reader sees the old content or the new, never half of either; a writer that dies leaves only a temporary name,
/// which <see cref="IsTemporary"/> recognises (listings skip it, <see cref="RemoveLeftovers"/> deletes it), and two
/// writers of one path never share a temporary name. Callers pass paths already confined to the data root
/// (<see cref="ShardStore.Resolve"/>). Hand-written: .NET renames atomically but has no write-then-rename helper.
/// </summary>
public static class AtomicWrite
{
    public const string TempSuffix = ".tmp";

    /// <summary>A temporary name beside <paramref name="path"/>, unique to this process and call.</summary>
    public static string TempPathFor(string path) => $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}{TempSuffix}";

    /// <summary>Whether a file or folder name is a temporary name of a write that has not finished (or never will).</summary>
    public static bool IsTemporary(string name) => name.EndsWith(TempSuffix, StringComparison.Ordinal);

    /// <summary>Writes a file through a stream.</summary>
    public static async Task FileAsync(string path, Func<Stream, Task> write, CancellationToken ct = default)
    {
        var temp = Begin(path);
        try
        {
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                await write(file);
                await file.FlushAsync(ct);
                file.Flush(flushToDisk: true);
            }
            Commit(temp, path);
        }
        finally
        {
            if (System.IO.File.Exists(temp)) System.IO.File.Delete(temp);
        }
    }

    /// <summary>Writes a file through a stream, synchronously (for writers that have no async form).</summary>
    public static void File(string path, Action<Stream> write)
    {
        var temp = Begin(path);
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(file);
                file.Flush(flushToDisk: true);
            }
            Commit(temp, path);
        }
        finally
        {
            if (System.IO.File.Exists(temp)) System.IO.File.Delete(temp);
        }
    }

    /// <summary>Writes a text file (UTF-8 without a byte-order mark).</summary>
    public static void Text(string path, string content) => File(path, stream =>
    {
        using var writer = new StreamWriter(stream, leaveOpen: true);
        writer.Write(content);
    });

    /// <summary>
    /// Writes a folder: <paramref name="write"/> fills a temporary folder, whose files are then flushed to disk and
    /// which replaces <paramref name="path"/> whole. Returns what <paramref name="write"/> returned.
    /// </summary>
    public static T Folder<T>(string path, Func<string, T> write)
    {
        var temp = Begin(path);
        var aside = TempPathFor(path);
        try
        {
            Directory.CreateDirectory(temp);
            var result = write(temp);
            foreach (var file in Directory.GetFiles(temp, "*", SearchOption.AllDirectories))
            {
                using var written = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
                written.Flush(flushToDisk: true);
            }
            // A folder cannot be renamed over another: an older one is moved aside first (still a temporary name if
            // the process dies in between, so nothing half-written is ever under the final name).
            if (Directory.Exists(path)) Directory.Move(path, aside);
            try
            {
                Directory.Move(temp, path);
            }
            catch when (Directory.Exists(aside) && !Directory.Exists(path))
            {
                Directory.Move(aside, path); // the old folder back, rather than none
                throw;
            }
            return result;
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            if (Directory.Exists(aside)) Directory.Delete(aside, recursive: true);
        }
    }

    /// <summary>Writes a folder (see <see cref="Folder{T}"/>).</summary>
    public static void Folder(string path, Action<string> write) => Folder(path, temp =>
    {
        write(temp);
        return true;
    });

    /// <summary>Deletes the temporary files and folders that killed or failed writes left in <paramref name="folder"/>.</summary>
    public static void RemoveLeftovers(string folder)
    {
        if (!Directory.Exists(folder)) return;
        foreach (var entry in Directory.EnumerateFileSystemEntries(folder).Where(e => IsTemporary(Path.GetFileName(e))).ToList())
        {
            if (Directory.Exists(entry)) Directory.Delete(entry, recursive: true);
            else System.IO.File.Delete(entry);
        }
    }

    /// <summary>A new temporary path for <paramref name="path"/>, its directory created.</summary>
    public static string Begin(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        return TempPathFor(path);
    }

    /// <summary>Puts a complete temporary file in place of <paramref name="path"/>.</summary>
    public static void Commit(string temp, string path) => System.IO.File.Move(temp, path, overwrite: true);

    /// <summary>
    /// Puts a complete folder (a copy fetched from the object store) at <paramref name="path"/> unless one is already
    /// there; false when another copy arrived first (as good as this one, which the caller removes).
    /// </summary>
    public static bool CommitFolderIfAbsent(string temp, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        try
        {
            Directory.Move(temp, path);
            return true;
        }
        catch (IOException) when (Directory.Exists(path))
        {
            return false;
        }
    }
}
