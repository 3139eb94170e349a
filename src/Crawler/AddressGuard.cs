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
        // An address the user listed as it is (an IPv6 range, say) is allowed; otherwise an IPv6 form of an IPv4
        // address (mapped, compatible, translated, NAT64, 6to4, Teredo) is judged as the IPv4 address it reaches.
        var judged = EmbeddedIPv4(address) ?? address;
        if (IsLinkLocal(judged))
            return _allowed.Any(n => (n.Contains(judged) || n.Contains(address)) && IsInsideLinkLocal(n));
        return IsPublic(judged) || _allowed.Any(n => n.Contains(judged) || n.Contains(address));
    }

    // Special-purpose blocks (IANA's IPv4 and IPv6 special-purpose address registries) that are not globally reachable.
    private static readonly IPNetwork[] NonPublic =
    [
        .. new[]
        {
            "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
            "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
            "224.0.0.0/4", "240.0.0.0/4",
            "::/128", "::1/128", "100::/64", "2001:db8::/32", "2001:10::/28", "2001:20::/28", "fc00::/7", "fe80::/10",
            "fec0::/10", "ff00::/8", "64:ff9b:1::/48",
        }.Select(IPNetwork.Parse),
    ];

    public static bool IsPublic(IPAddress address)
    {
        address = EmbeddedIPv4(address) ?? address;
        return !NonPublic.Any(n => n.Contains(address));
    }

    private static readonly IPNetwork Nat64 = IPNetwork.Parse("64:ff9b::/96");
    private static readonly IPNetwork Nat64Local = IPNetwork.Parse("64:ff9b:1::/48");
    private static readonly IPNetwork SixToFour = IPNetwork.Parse("2002::/16");
    private static readonly IPNetwork Teredo = IPNetwork.Parse("2001::/32");

    /// <summary>
    /// The IPv4 address an IPv6 address stands for, or null: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
    /// (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d), NAT64 (64:ff9b::/96 and the last 32 bits of 64:ff9b:1::/48),
    /// 6to4 (2002:AABB:CCDD::/48) and Teredo (the client's address, inverted, in the last 32 bits).
    /// </summary>
    public static IPAddress? EmbeddedIPv4(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetworkV6) return null;
        var b = address.GetAddressBytes();
        if (address.IsIPv4MappedToIPv6) return address.MapToIPv4();
        if (Nat64.Contains(address) || Nat64Local.Contains(address)) return new IPAddress(b.AsSpan(12, 4));
        if (SixToFour.Contains(address)) return new IPAddress(b.AsSpan(2, 4));
        if (Teredo.Contains(address)) return new IPAddress([(byte)~b[12], (byte)~b[13], (byte)~b[14], (byte)~b[15]]);
        if (b.AsSpan(0, 8).IndexOfAnyExcept((byte)0) < 0)
        {
            var middle = (b[8], b[9], b[10], b[11]);
            // ::ffff:0:a.b.c.d (translated) or ::a.b.c.d (compatible); :: and ::1 themselves are not IPv4 forms.
            if (middle == (0xff, 0xff, 0, 0) || (middle == (0, 0, 0, 0) && b.AsSpan(12, 4).IndexOfAnyExcept((byte)0) >= 0 && !(b[12] == 0 && b[13] == 0 && b[14] == 0 && b[15] <= 1)))
                return new IPAddress(b.AsSpan(12, 4));
        }
        return null;
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
