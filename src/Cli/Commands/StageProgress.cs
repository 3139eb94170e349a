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
