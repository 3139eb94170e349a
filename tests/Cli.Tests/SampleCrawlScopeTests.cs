using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Contracts.Rows;
using Pipeline.Contracts.V1;
using Pipeline.Crawler;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Cli.Tests;

public sealed class SampleCrawlScopeTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("sample-scope-").FullName;

    [Fact(Timeout = 120_000)]
    public async Task The_sample_run_crawls_its_own_server_and_no_other_local_service()
    {
        // Regression (#26): in sample mode the run allowed all of 127.0.0.0/8, and the crawler followed a link to
        // another local service on another port of the same address.
        var otherFolder = Directory.CreateDirectory(Path.Combine(_root, "other")).FullName;
        File.WriteAllText(Path.Combine(otherFolder, "index.html"), "<html><body><p>another local service</p></body></html>");
        File.WriteAllText(Path.Combine(otherFolder, "secret.html"), "<html><body><p>not for the crawler</p></body></html>");
        await using var other = await StaticSite.StartAsync(otherFolder);
        var siteFolder = Directory.CreateDirectory(Path.Combine(_root, "site")).FullName;
        File.WriteAllText(Path.Combine(siteFolder, "index.html"),
            $"<html><body><a href='/a.html'>a</a><a href='{other.Address}secret.html'>s</a><a href='{other.Address}'>o</a></body></html>");
        File.WriteAllText(Path.Combine(siteFolder, "a.html"), "<html><body><p>page a</p></body></html>");
        await using var site = await StaticSite.StartAsync(siteFolder);

        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(EmbeddedRun.SampleCrawlSettings(site.Address).Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)))
            .Build();
        var options = StrictConfig.Bind<CrawlOptions>(configuration, CrawlOptions.Section);
        var store = new ShardStore(Path.Combine(_root, "out"));
        var shards = new List<ShardRef>();
        await new WebCrawler(options, store, NullLogger.Instance).RunAsync("t", [site.Address.ToString()], s => { shards.Add(s); return Task.CompletedTask; }, CancellationToken.None);
        var urls = new List<string>();
        foreach (var shard in shards) urls.AddRange((await store.ReadParquetAsync<RawPage>(shard)).Select(p => p.Url));
        Assert.Equal([site.Address + "", site.Address + "a.html"], urls.Order().ToList());
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
