using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Pipeline.Hosting;

namespace Pipeline.Cli;

/// <summary>Builds a host for some stages: configuration from pipeline.json, PIPELINE__* variables and overrides.</summary>
public static class PipelineHost
{
    public static IHost Build(IEnumerable<IStageModule> modules, IDictionary<string, string?> overrides, bool quiet)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.Sources.Clear();
        builder.Configuration
            .AddJsonFile("pipeline.json", optional: true)
            .AddEnvironmentVariables()
            .AddInMemoryCollection(overrides);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        builder.Logging.SetMinimumLevel(quiet ? LogLevel.Warning : LogLevel.Information);
        builder.Logging.AddFilter("MassTransit", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.Services.AddPipeline(builder.Configuration, modules);
        return builder.Build();
    }

    public static IBus Bus(this IHost host) => host.Services.GetRequiredService<IBus>();
}
