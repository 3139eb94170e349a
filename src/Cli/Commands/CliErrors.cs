using System.Text.Json;
using Pipeline.Storage;

namespace Pipeline.Cli.Commands;

/// <summary>Which exceptions are the user's input or environment (one `error:` line, exit 2), and how to word them.</summary>
public static class CliErrors
{
    public static bool IsUserError(Exception e) => e switch
    {
        AggregateException { InnerExceptions.Count: 1 } a => IsUserError(a.InnerException!),
        ArgumentException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException or InvalidOperationException
            or ShardRejectedException or JsonException or UnauthorizedAccessException or TimeoutException or FormatException
            or IOException or NotSupportedException or System.Data.Common.DbException => true,
        _ => false,
    };

    /// <summary>
    /// The message on one line, with terminal control characters made visible; a full disk under
    /// <paramref name="dataRoot"/> (the command's --out) is said as such, with what to do.
    /// </summary>
    public static string Describe(Exception e, string? dataRoot = null)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } a) e = a.InnerException!;
        if (dataRoot is null || !IsFullDisk(e, dataRoot)) return Printable.Line(e.Message);
        // The innermost message is the disk's own; wrappers would guess at other causes (a damaged ledger).
        var cause = e;
        while (cause.InnerException is { } inner) cause = inner;
        return $"no space left on the disk of '{Printable.Line(dataRoot)}' ({Printable.Line(cause.Message)}); free some space and run the same command again: what finished is kept";
    }

    private const int NoSpaceErrno = 28; // ENOSPC: .NET's IOException on Unix carries the errno as its HResult
    private const int SqliteFull = 13;
    private const int SqliteIoError = 10;

    private static bool IsFullDisk(Exception e, string dataRoot)
    {
        var ioError = false;
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            if (x is IOException { HResult: NoSpaceErrno } or Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: SqliteFull }) return true;
            ioError |= x is Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: SqliteIoError };
        }
        // SQLite reports a write that ran out of space as a plain I/O error: the disk's free space tells which.
        return ioError && FreeBytes(dataRoot) is < 64 * 1024;
    }

    private static long? FreeBytes(string path)
    {
        try
        {
            var full = Path.GetFullPath(path);
            // File systems of no size (/proc, /sys) are not disks that fill up.
            return DriveInfo.GetDrives().Where(d => d.IsReady && d.TotalSize > 0 && full.StartsWith(d.RootDirectory.FullName, StringComparison.Ordinal))
                .MaxBy(d => d.RootDirectory.FullName.Length)?.AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
