using System.Diagnostics;

namespace Pipeline.Cli.Tests;

/// <summary>Starts the built `pipeline` CLI as a child process (output drained), as a user would run it.</summary>
internal static class PipelineProcess
{
    /// <param name="output">Receives every line the process writes (stdout and stderr); drained and dropped when null.</param>
    public static Process Start(IEnumerable<string> arguments, IEnumerable<string> settings, IReadOnlyDictionary<string, string?>? environment = null,
        Action<string>? output = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "pipeline.dll"));
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        foreach (var setting in settings)
        {
            start.ArgumentList.Add("--set");
            start.ArgumentList.Add(setting);
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>()) start.Environment[key] = value;
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) output?.Invoke(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) output?.Invoke(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}
