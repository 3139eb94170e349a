using Spectre.Console;

namespace Pipeline.Cli.Commands;

/// <summary>
/// Progress of a long job: a live bar on a terminal, one log line per item when output is redirected (CI, files).
/// </summary>
public static class StageProgress
{
    /// <summary>A terminal that takes redraws: not redirected, and not NO_COLOR (Program turns ANSI off for it).</summary>
    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive && AnsiConsole.Profile.Capabilities.Ansi;

    public static async Task ForEachAsync<T>(string title, IReadOnlyList<T> items, Func<T, Task<string>> work)
    {
        if (!Interactive)
        {
            for (var i = 0; i < items.Count; i++)
            {
                var line = await work(items[i]);
                Console.WriteLine($"{title} {i + 1}/{items.Count}: {line}");
            }
            return;
        }
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask(title, maxValue: items.Count);
                foreach (var item in items)
                {
                    var line = await work(item);
                    task.Description = $"{title}: {Markup.Escape(line)}";
                    task.Increment(1);
                }
            });
    }
}

/// <summary>
/// A job's one-line status (the crawl's counters, WARC ingestion): redrawn in place on a terminal; off a terminal
/// (a log file, a pipe) a plain line at most every <paramref name="every"/> and the last one, never a carriage return.
/// </summary>
public sealed class StatusLine(TimeSpan every)
{
    private readonly Lock _gate = new();
    private DateTime _last = DateTime.MinValue;
    private string? _pending;

    private static bool Redraws => !Console.IsErrorRedirected && StageProgress.Interactive;

    public void Show(string line)
    {
        lock (_gate)
        {
            if (Redraws)
            {
                Console.Error.Write($"\r{line}   ");
                return;
            }
            if (DateTime.UtcNow - _last < every)
            {
                _pending = line;
                return;
            }
            Console.Error.WriteLine(line);
            _last = DateTime.UtcNow;
            _pending = null;
        }
    }

    /// <summary>Ends the status: the line ends on a terminal, and the last status not yet written is written.</summary>
    public void End()
    {
        lock (_gate)
        {
            if (Redraws) Console.Error.WriteLine();
            else if (_pending is not null) Console.Error.WriteLine(_pending);
            _pending = null;
        }
    }
}
