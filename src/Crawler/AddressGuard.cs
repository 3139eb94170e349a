using System.Net;
using System.Net.Sockets;

namespace Pipeline.Crawler;

/// <summary>
/// Refuses loopback, private, link-local and other non-public addresses, checked on the resolved address of every
/// connection (so after DNS and after each redirect), so a crawl seeded from the web cannot reach internal services.
/// </summary>
public static class AddressGuard
{
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
                || b[0] >= 224);
        }
        return !(address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6Multicast || address.IsIPv6UniqueLocal);
    }

    /// <summary>A ConnectCallback for SocketsHttpHandler that enforces the rule on the address actually dialled.</summary>
    public static Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>> ConnectCallback(bool allowPrivate) =>
        async (context, ct) =>
        {
            var addresses = await Dns.GetHostAddressesAsync(context.DnsEndPoint.Host, ct);
            var usable = allowPrivate ? addresses : addresses.Where(IsPublic).ToArray();
            if (usable.Length == 0)
                throw new BlockedAddressException(context.DnsEndPoint.Host, addresses);
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(usable, context.DnsEndPoint.Port, ct);
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
    : Exception($"refused to connect to '{host}': it resolves only to non-public addresses ({string.Join(", ", addresses.Select(a => a.ToString()))}); set AllowPrivateAddresses to crawl them");
