using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Dashboard;
using Pipeline.Hosting;
using Pipeline.Runtime;

namespace Pipeline.Cli.Commands;

/// <summary>`pipeline serve dashboard`: the web view beside a bus connection of its own (to ask the trainer to cancel).</summary>
public static class DashboardCommand
{
    public static async Task RunAsync(IDictionary<string, string?> overrides, CancellationToken ct)
    {
        using var host = PipelineHost.Build([], overrides, quiet: false);
        var options = host.Services.GetRequiredService<PipelineOptions>();
        var ledger = host.Services.GetRequiredService<Ledger>();
        await using var app = DashboardServer.Build(options, ledger, (run, token) => host.Bus().PublishBounded(new CancelTraining(run), token));
        await host.StartAsync(ct);
        try
        {
            await app.StartAsync(ct);
            host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("dashboard")
                .LogInformation("dashboard: {Urls}", string.Join(", ", app.Urls));
            await app.WaitForShutdownAsync(ct);
        }
        finally
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await app.StopAsync(stop.Token);
            await host.StopAsync(stop.Token);
        }
    }
}
