using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Pipeline.Crawler;

/// <summary>Serves a folder over HTTP on a loopback port (the shipped sample site, and test sites).</summary>
public sealed class StaticSite : IAsyncDisposable
{
    private readonly WebApplication _app;

    private StaticSite(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    public Uri Address { get; }

    /// <summary>
    /// Serves <paramref name="folder"/> on <paramref name="host"/>:<paramref name="port"/> (0 = any free port);
    /// <paramref name="host"/> is a loopback address, 127.0.0.1 or [::1].
    /// </summary>
    public static async Task<StaticSite> StartAsync(string folder, Action<WebApplication>? configure = null, int port = 0, string host = "127.0.0.1")
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://{host}:{port}");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        configure?.Invoke(app);
        var files = new PhysicalFileProvider(Path.GetFullPath(folder));
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
        app.UseStaticFiles(new StaticFileOptions { FileProvider = files, ServeUnknownFileTypes = true });
        await app.StartAsync();
        var address = new Uri(app.Urls.First());
        return new StaticSite(app, address);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
