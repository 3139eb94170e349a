using System.Runtime.InteropServices;

namespace Pipeline.Storage;

/// <summary>
/// The real path of a file as the operating system resolves it (every symbolic link, '..' inside link targets).
/// .NET has no realpath: <see cref="FileSystemInfo.ResolveLinkTarget"/> combines a relative target with its
/// folder lexically, which is wrong when that folder is reached through another link. So this calls libc's
/// realpath(3) (Linux, the supported platform) on the longest prefix of the path that exists; the rest does not
/// exist yet, so it cannot hold a link.
/// </summary>
public static partial class RealPath
{
    public static string OfExistingPrefix(string fullPath)
    {
        var existing = Path.TrimEndingDirectorySeparator(fullPath);
        var rest = new Stack<string>();
        while (!Exists(existing))
        {
            var parent = Path.GetDirectoryName(existing);
            if (parent is null) return fullPath;
            rest.Push(Path.GetFileName(existing));
            existing = parent;
        }
        var resolved = Resolve(existing);
        while (rest.Count > 0) resolved = Path.Combine(resolved, rest.Pop());
        return resolved;
    }

    private static bool Exists(string path) =>
        File.Exists(path) || Directory.Exists(path) || new FileInfo(path).LinkTarget is not null;

    private static string Resolve(string path)
    {
        var result = realpath(path, IntPtr.Zero);
        if (result == IntPtr.Zero)
        {
            var errno = Marshal.GetLastPInvokeError();
            // ENOENT here means a dangling link: its target does not exist, so where it leads cannot be checked.
            throw new IOException(errno == 2 ? $"'{path}' is a symbolic link whose target does not exist" : $"realpath('{path}') failed with errno {errno}");
        }
        try
        {
            return Marshal.PtrToStringUTF8(result)!;
        }
        finally
        {
            free(result);
        }
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr realpath(string path, IntPtr resolved);

    [LibraryImport("libc")]
    private static partial void free(IntPtr pointer);
}
