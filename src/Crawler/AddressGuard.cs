using System.Net;
using System.Net.Sockets;

namespace Pipeline.Crawler;

/// <summary>
/// Decides which addresses a crawl may connect to, checked on the resolved address of every connection (so after DNS
/// and after each redirect): public addresses, plus the ranges the user lists in <c>AllowedAddressRanges</c> (CIDR).
/// Loopback, private, shared, multicast and reserved addresses are refused unless a listed range contains them.
/// Link-local addresses (169.254.0.0/16, where cloud metadata services live, and fe80::/10) are refused unless a
/// listed range lies inside the link-local block itself, so a broad allowance such as 0.0.0.0/0 never opens them.
/// </summary>
public sealed class AddressGuard
{
    private static readonly IPNetwork LinkLocalV4 = IPNetwork.Parse("169.254.0.0/16");
    private static readonly IPNetwork LinkLocalV6 = IPNetwork.Parse("fe80::/10");

    private readonly IReadOnlyList<IPNetwork> _allowed;

    public AddressGuard(IEnumerable<string> allowedRanges)
    {
        var list = new List<IPNetwork>();
        foreach (var range in allowedRanges)
        {
            if (!IPNetwork.TryParse(range.Trim(), out var network))
                throw new ArgumentException($"Pipeline:Crawler:AllowedAddressRanges: '{range}' is not a CIDR range (for example 127.0.0.0/8 or 10.20.0.0/16)");
            list.Add(network);
        }
        _allowed = list;
    }

    public bool IsAllowed(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (IsLinkLocal(address))
            return _allowed.Any(n => n.Contains(address) && IsInsideLinkLocal(n));
        return IsPublic(address) || _allowed.Any(n => n.Contains(address));
    }

    public static bool IsPublic(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any)) return false;
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = address.GetAddressBytes();
            return !(b[0] == 10 || b[0] == 0 || b[0] == 127
                || (b[0] == 172 && b[1] >= 16 && b[1] <= 31)
                || (b[0] == 192 && b[1] == 168)
                || (b[0] == 169 && b[1] == 254)
                || (b[0] == 100 && b[1] >= 64 && b[1] <= 127)
                || (b[0] == 192 && b[1] == 0 && b[2] == 0)
                || (b[0] == 198 && (b[1] == 18 || b[1] == 19))
                || b[0] >= 224);
        }
        return !(address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6Multicast || address.IsIPv6UniqueLocal);
    }

    private static bool IsLinkLocal(IPAddress address) => LinkLocalV4.Contains(address) || LinkLocalV6.Contains(address);

    private static bool IsInsideLinkLocal(IPNetwork network) =>
        (network.BaseAddress.AddressFamily == AddressFamily.InterNetwork && network.PrefixLength >= 16 && LinkLocalV4.Contains(network.BaseAddress))
        || (network.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6 && network.PrefixLength >= 10 && LinkLocalV6.Contains(network.BaseAddress));

    /// <summary>Resolves a host and throws <see cref="BlockedAddressException"/> unless at least one address is allowed.</summary>
    public async Task<IPAddress[]> ResolveAllowedAsync(string host, CancellationToken ct)
    {
        var addresses = IPAddress.TryParse(host.Trim('[', ']'), out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, ct);
        var usable = addresses.Where(IsAllowed).ToArray();
        if (usable.Length == 0) throw new BlockedAddressException(host, addresses);
        return usable;
    }

    /// <summary>
    /// A ConnectCallback for SocketsHttpHandler that enforces the rule on the address actually dialled. A configured
    /// proxy (<paramref name="proxy"/>) is the one endpoint dialled without the check: the user named it, and the
    /// fetcher checks each target host itself before sending a request through it.
    /// </summary>
    public Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>> ConnectCallback(Uri? proxy = null) =>
        async (context, ct) =>
        {
            var endpoint = context.DnsEndPoint;
            var isProxy = proxy is not null && string.Equals(endpoint.Host, proxy.IdnHost, StringComparison.OrdinalIgnoreCase) && endpoint.Port == proxy.Port;
            var usable = isProxy ? await Dns.GetHostAddressesAsync(endpoint.Host, ct) : await ResolveAllowedAsync(endpoint.Host, ct);
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(usable, endpoint.Port, ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        };
}

public sealed class BlockedAddressException(string host, IPAddress[] addresses)
    : Exception($"refused to connect to '{host}': it resolves only to addresses outside the allowed ones ({string.Join(", ", addresses.Select(a => a.ToString()))}); " +
        "list a range in Pipeline:Crawler:AllowedAddressRanges to crawl it");
