using System.IO.Hashing;
using System.Text;

namespace Pipeline.Crawler;

/// <summary>
/// One of <see cref="Count"/> parts of a crawl split by host, so that as many crawler services (on as many hosts) share
/// it: a host belongs to one part, whose job alone fetches its pages (so per-host politeness holds across services),
/// and links to another part's hosts are handed to that part through <see cref="Handoff"/>.
/// </summary>
public sealed record CrawlPartition(int Index, int Count, ICrawlHandoff Handoff)
{
    /// <summary>
    /// The part a host belongs to: a stable hash of its lower-case authority (name and port, as the crawler's
    /// per-host gates and robots.txt see a host).
    /// </summary>
    public static int OwnerOf(string authority, int count) =>
        (int)(XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(authority.ToLowerInvariant())) % (ulong)count);

    public bool Owns(string url) => OwnerOf(new Uri(url).Authority, Count) == Index;

    /// <summary>Where a part keeps its frontier and names its shards (raw-p1-00001.parquet): parts share a run's folder.</summary>
    public string Tag => $"p{Index}";
}

/// <summary>How the parts of a crawl hand each other URLs and agree that the crawl is over (the run ledger).</summary>
public interface ICrawlHandoff
{
    void Send(int part, IReadOnlyCollection<(string Url, int Depth)> urls);

    /// <summary>Every URL handed to this part so far.</summary>
    IReadOnlyList<(string Url, int Depth)> Received();

    /// <summary>This part is out of work after taking <paramref name="received"/> handed-off URLs, or working again (null).</summary>
    void SetIdle(long? received);

    /// <summary>Every part is idle and has taken every URL handed to it: nothing can make work again.</summary>
    bool AllIdle();

    /// <summary>Sets the pages this part counts against the crawl's page limit (at its start: those it committed).</summary>
    void SetPages(long pages);

    /// <summary>Takes one page of the crawl's limit, shared by every part; false when none is left.</summary>
    bool TakePage(int maxPages);
}
