using System.Diagnostics;

namespace Pipeline.Interop.Tests;

/// <summary>Runs the other ecosystems' own code in tests/interop: Debian's Python 3 with numpy and Jinja2, and Node.</summary>
internal static class Ecosystem
{
    public static string Folder { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "interop");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("tests/interop not found above the test binaries");
    }

    /// <summary>Debian's python3 (python3-numpy, python3-jinja2), not whatever python3 comes first on PATH.</summary>
    public static void Python(params string[] args) => Run("/usr/bin/python3", args);

    /// <summary>A script of tests/interop run with <paramref name="workingDirectory"/> as its working directory.</summary>
    public static void PythonIn(string workingDirectory, string script, params string[] args) =>
        Run("/usr/bin/python3", [Path.Combine(Folder, script), .. args], workingDirectory);

    public static void Node(params string[] args)
    {
        Assert.True(Directory.Exists(Path.Combine(Folder, "node_modules")), $"run `npm ci --prefix {Folder}` first (.ci/run does)");
        Run("node", args);
    }

    private static void Run(string program, string[] args, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true, WorkingDirectory = workingDirectory ?? Folder };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', args)} failed: {stderr.Result}");
    }
}
