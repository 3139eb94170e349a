using Pipeline.Runtime;

namespace Pipeline.Crawler;

/// <summary>The parts of a split crawl hand each other URLs, and agree that the crawl is over, through the run ledger.</summary>
public sealed class LedgerCrawlHandoff(Ledger ledger, string runId, int part, int parts) : ICrawlHandoff
{
    public void Send(int target, IReadOnlyCollection<(string Url, int Depth)> urls) => ledger.CrawlParts.HandOffUrls(runId, target, urls);

    public IReadOnlyList<(string Url, int Depth)> Received() => ledger.CrawlParts.HandedOffUrls(runId, part);

    public void SetIdle(long? received) => ledger.CrawlParts.SetIdle(runId, part, received);

    public bool AllIdle() => ledger.CrawlParts.Quiescent(runId, parts);

    public void SetPages(long pages) => ledger.CrawlParts.SetPages(runId, part, pages);

    public bool TakePage(int maxPages) => ledger.CrawlParts.TakePage(runId, part, maxPages);
}
