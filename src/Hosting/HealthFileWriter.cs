using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Pipeline.Hosting;

/// <summary>
/// Container liveness without a web server: while the health checks (MassTransit registers its bus and endpoints)
/// report healthy, the service touches <see cref="PipelineOptions.HealthFile"/>; when they do not, it deletes it.
/// compose.yaml's health check tests the file's age.
/// </summary>
public sealed class HealthFileWriter(HealthCheckService health, PipelineOptions options, ILogger<HealthFileWriter> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var path = options.HealthFile!;
        var wasHealthy = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            var report = await health.CheckHealthAsync(stoppingToken);
            var healthy = report.Status == HealthStatus.Healthy;
            if (healthy) await File.WriteAllTextAsync(path, DateTime.UtcNow.ToString("O"), stoppingToken);
            else File.Delete(path);
            if (healthy != wasHealthy)
                logger.LogInformation("health: {Status} ({Entries})", report.Status,
                    string.Join(", ", report.Entries.Where(e => e.Value.Status != HealthStatus.Healthy).Select(e => $"{e.Key}: {e.Value.Description}")));
            wasHealthy = healthy;
            try
            {
                await Task.Delay(options.HealthInterval, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        File.Delete(path);
    }
}
