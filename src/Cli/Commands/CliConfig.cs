using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Pipeline.Runtime;

namespace Pipeline.Cli.Commands;

/// <summary>Configuration for commands that run a stage directly (no bus): pipeline.json, PIPELINE__* variables, --set.</summary>
public static class CliConfig
{
    public static IConfiguration Load(IReadOnlyDictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(Directory.GetCurrentDirectory(), "pipeline.json"), optional: true)
            .AddEnvironmentVariables()
            .AddInMemoryCollection(settings)
            .Build();
        // The stage commands bind only their own section; the root check catches misspelled sections and root keys.
        Runtime.StrictConfig.BindRoot<Hosting.PipelineOptions>(configuration, Hosting.PipelineOptions.Section, Hosting.PipelineOptions.StageSections);
        return configuration;
    }

    /// <summary>
    /// The run ledger of a data root, opened the one way every command opens it: PostgreSQL when
    /// Pipeline:Ledger:ConnectionString is set (pipeline.json, PIPELINE__* variables, --set), otherwise ledger.db in
    /// the folder. <paramref name="existing"/>: the run must already be there (status, reports), never created by looking.
    /// </summary>
    public static RunLedger Ledger(string dataRoot, IConfiguration? configuration = null, bool existing = false)
    {
        configuration ??= Load(new Dictionary<string, string?>());
        var connectionString = configuration["Pipeline:Ledger:ConnectionString"];
        if (existing && string.IsNullOrWhiteSpace(connectionString) && !File.Exists(Path.Combine(dataRoot, "ledger.db")))
            throw new ArgumentException($"--out '{dataRoot}' holds no run (no ledger.db there, and Pipeline:Ledger:ConnectionString is not set)");
        return RunLedger.Open(dataRoot, connectionString);
    }

    public static T Section<T>(this IConfiguration configuration, string section) where T : class, new() =>
        Runtime.StrictConfig.Bind<T>(configuration, section);

    public static ILoggerFactory Logging(bool quiet) => LoggerFactory.Create(b =>
    {
        b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        b.SetMinimumLevel(quiet ? LogLevel.Warning : LogLevel.Information);
    });
}
