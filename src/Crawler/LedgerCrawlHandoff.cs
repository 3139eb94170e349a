using Pipeline.Runtime;

namespace Pipeline.Crawler;

/// <summary>The parts of a split crawl hand each other URLs, and agree that the crawl is over, through the run ledger.</summary>
public sealed class LedgerCrawlHandoff(RunLedger ledger, string runId, int part, int parts) : ICrawlHandoff
{
    public void Send(int target, IReadOnlyCollection<(string Url, int Depth)> urls) => ledger.HandOffUrls(runId, target, urls);

    public IReadOnlyList<(string Url, int Depth)> Received() => ledger.HandedOffUrls(runId, part);

    public void SetIdle(long? received) => ledger.SetCrawlPartitionIdle(runId, part, received);

    public bool AllIdle() => ledger.CrawlPartitionsQuiescent(runId, parts);

    public void SetPages(long pages) => ledger.SetCrawlPartitionPages(runId, part, pages);

    public bool TakePage(int maxPages) => ledger.TakeCrawlPage(runId, part, maxPages);
}
