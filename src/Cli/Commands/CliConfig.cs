using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace Pipeline.Cli.Commands;

/// <summary>Configuration for commands that run a stage directly (no bus): pipeline.json, PIPELINE__* variables, --set.</summary>
public static class CliConfig
{
    public static IConfiguration Load(IReadOnlyDictionary<string, string?> settings) =>
        new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(Directory.GetCurrentDirectory(), "pipeline.json"), optional: true)
            .AddEnvironmentVariables()
            .AddInMemoryCollection(settings)
            .Build();

    public static T Section<T>(this IConfiguration configuration, string section) where T : new() =>
        configuration.GetSection(section).Get<T>() ?? new T();

    public static ILoggerFactory Logging(bool quiet) => LoggerFactory.Create(b =>
    {
        b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        b.SetMinimumLevel(quiet ? LogLevel.Warning : LogLevel.Information);
    });
}
