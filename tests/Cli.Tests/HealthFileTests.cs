using Pipeline.Cleaner;

namespace Pipeline.Cli.Tests;

/// <summary>The liveness file compose.yaml's health checks read: present and fresh while the bus is up, gone after.</summary>
public sealed class HealthFileTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("health-").FullName;

    [Fact(Timeout = 60_000)]
    public async Task A_service_touches_its_health_file_while_the_bus_is_healthy_and_removes_it_on_stop()
    {
        var file = Path.Combine(_root, "healthy");
        var overrides = new Dictionary<string, string?>
        {
            ["Pipeline:DataRoot"] = _root,
            ["Pipeline:HealthFile"] = file,
            ["Pipeline:HealthInterval"] = "00:00:00.200",
        };
        using var host = PipelineHost.Build([new CleanerModule()], overrides, quiet: true);
        await host.StartAsync();
        while (!File.Exists(file)) await Task.Delay(50);
        var first = File.GetLastWriteTimeUtc(file);
        // Refreshed again: waited for, not timed (a loaded machine may take longer than a few intervals).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (File.GetLastWriteTimeUtc(file) <= first)
        {
            Assert.True(DateTime.UtcNow < deadline, "the health file is not refreshed");
            await Task.Delay(50);
        }
        await host.StopAsync();
        Assert.False(File.Exists(file));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
