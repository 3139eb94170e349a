using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Cli.Commands;

/// <summary>
/// What every command and service of this process opens for a data root, the one way: configuration (pipeline.json
/// in the working directory, then PIPELINE__* variables, then --set and other overrides), checked strictly, and the
/// shard store and run ledger it names (an object store when Pipeline:Storage says so; PostgreSQL when
/// Pipeline:Ledger:ConnectionString is set, otherwise ledger.db in the folder).
/// </summary>
public sealed class PipelineContext
{
    private readonly Lazy<Ledger> _ledger;
    private readonly Lazy<ShardStore> _store;

    private PipelineContext(string dataRoot, IConfigurationRoot configuration, bool existingRun)
    {
        DataRoot = dataRoot;
        Configuration = configuration;
        // Commands bind only their own section; the root check catches misspelled sections and root keys.
        var options = StrictConfig.BindRoot<PipelineOptions>(configuration, PipelineOptions.Section, PipelineOptions.StageSections);
        _store = new(() => options.Storage.Open(dataRoot));
        _ledger = new(() =>
        {
            var connectionString = options.Ledger.ConnectionString;
            if (existingRun && string.IsNullOrWhiteSpace(connectionString) && !File.Exists(Path.Combine(dataRoot, "ledger.db")))
                throw new ArgumentException($"--out '{dataRoot}' holds no run (no ledger.db there, and Pipeline:Ledger:ConnectionString is not set)");
            return Ledger.Open(dataRoot, connectionString);
        });
    }

    public string DataRoot { get; }

    public IConfigurationRoot Configuration { get; }

    /// <summary>The data root's store (opened when first used).</summary>
    public ShardStore Store => _store.Value;

    /// <summary>The run ledger (opened when first used).</summary>
    public Ledger Ledger => _ledger.Value;

    /// <param name="existingRun">The folder must already hold a run (status, reports): its ledger is never created by looking.</param>
    public static PipelineContext Open(string dataRoot, IReadOnlyDictionary<string, string?>? settings = null, bool existingRun = false) =>
        new(dataRoot, LoadConfiguration(settings ?? new Dictionary<string, string?>()), existingRun);

    /// <summary>
    /// The one configuration chain (hosts take it too: <see cref="PipelineHost.Build"/>). It is checked strictly where it
    /// is bound: by <see cref="Open"/> here, by the host's AddPipeline there.
    /// </summary>
    public static IConfigurationRoot LoadConfiguration(IEnumerable<KeyValuePair<string, string?>> settings) =>
        new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(Directory.GetCurrentDirectory(), "pipeline.json"), optional: true)
            .AddEnvironmentVariables()
            .AddInMemoryCollection(settings)
            .Build();

    public T Section<T>(string section) where T : class, new() => StrictConfig.Bind<T>(Configuration, section);

    public static ILoggerFactory Logging(bool quiet) => LoggerFactory.Create(b =>
    {
        b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        b.SetMinimumLevel(quiet ? LogLevel.Warning : LogLevel.Information);
    });
}
