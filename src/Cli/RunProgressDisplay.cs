using Spectre.Console;

namespace Pipeline.Cli;

/// <summary>
/// The live view of `pipeline run`: one row per stage in pipeline order with a bar where the total is known, counts,
/// rate and time left, redrawn twice a second on a terminal. Off a terminal (a log file, a pipe) or with NO_COLOR, the
/// rows that changed go out as plain lines at most every <see cref="PlainInterval"/>, without colours or redraws.
/// </summary>
public sealed class RunProgressDisplay(RunProgress progress, string outDir, TextWriter? plainOutput = null)
{
    private volatile string _phase = "starting";
    private readonly Dictionary<string, string> _printed = [];

    public TimeSpan PlainInterval { get; init; } = TimeSpan.FromSeconds(5);

    public void SetPhase(string phase) => _phase = phase;

    public async Task RunAsync(Func<Task> work)
    {
        if (!Commands.StageProgress.Interactive || plainOutput is not null)
        {
            await RunPlainAsync(work);
            return;
        }
        await AnsiConsole.Live(Render()).AutoClear(false).StartAsync(async context =>
        {
            var task = work();
            while (!task.IsCompleted)
            {
                context.UpdateTarget(Render());
                await Task.WhenAny(task, Task.Delay(500));
            }
            context.UpdateTarget(Render());
            await task;
        });
    }

    private async Task RunPlainAsync(Func<Task> work)
    {
        var output = plainOutput ?? Console.Out;
        var task = work();
        while (!task.IsCompleted)
        {
            await Task.WhenAny(task, Task.Delay(PlainInterval));
            PrintChanged(output);
        }
        await task;
    }

    /// <summary>Prints the rows whose line differs from the last one printed for them.</summary>
    public void PrintChanged(TextWriter output)
    {
        foreach (var row in progress.Read(DateTime.UtcNow))
        {
            var line = RunProgress.PlainLine(row);
            // The rate and time left move on every reading; a row is printed again when its counts or details change.
            var key = $"{row.Done}|{row.Total}|{row.Detail}";
            if (_printed.TryGetValue(row.Stage, out var last) && last == key) continue;
            _printed[row.Stage] = key;
            output.WriteLine($"progress {line}");
        }
        output.Flush();
    }

    private Table Render()
    {
        var table = new Table().Title($"pipeline run [bold]{Markup.Escape(outDir)}[/]: {Markup.Escape(_phase)}")
            .AddColumns("stage", "progress", "done", "rate", "left", "details");
        foreach (var row in progress.Read(DateTime.UtcNow))
        {
            table.AddRow(
                Markup.Escape(row.Stage),
                row.Fraction is { } f ? $"{Bar(f, 20)} {f * 100,3:F0}%" : "",
                Markup.Escape(row.Total is { } t ? $"{row.Done:N0}/{t:N0} {row.Unit}" : $"{row.Done:N0} {row.Unit}"),
                row.Rate is { } r ? $"{r:N1}/s" : "",
                row.Eta is { } e ? RunProgress.Duration(e) : "",
                Markup.Escape(row.Detail));
        }
        return table;
    }

    private static string Bar(double fraction, int width)
    {
        var filled = (int)Math.Round(fraction * width);
        return $"[green]{new string('━', filled)}[/][grey]{new string('━', width - filled)}[/]";
    }
}
