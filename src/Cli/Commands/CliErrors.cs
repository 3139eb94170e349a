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

    /// <summary>The message on one line, with terminal control characters made visible.</summary>
    public static string Describe(Exception e)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } a) e = a.InnerException!;
        return Printable.Line(e.Message);
    }
}
