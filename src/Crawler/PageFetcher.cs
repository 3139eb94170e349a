using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;

namespace Pipeline.Crawler;

/// <summary>Outcome of one fetch: a body, or the reason there is none.</summary>
public sealed record FetchResult(
    string Url,
    string FinalUrl,
    int Status,
    string ContentType,
    string? HeaderCharset,
    byte[]? Body,
    bool Truncated,
    string? SkipReason);

/// <summary>
/// HTTP fetching with the limits a crawler needs: manual redirects (each hop re-checked by the caller's scope and by
/// the address guard), retries with back-off on 429/503 honouring Retry-After, a request timeout, a body size limit
/// and decompression done here, bounded, so a gzip bomb stops at the limit.
/// </summary>
public sealed class PageFetcher : IDisposable
{
    private readonly HttpClient _client;
    private readonly CrawlOptions _options;

    public PageFetcher(CrawlOptions options)
    {
        _options = options;
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectCallback = AddressGuard.ConnectCallback(options.AllowPrivateAddresses),
            ConnectTimeout = options.RequestTimeout,
            MaxConnectionsPerServer = Math.Max(1, options.PerHostConcurrency),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        _client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _client.DefaultRequestHeaders.UserAgent.ParseAdd(options.UserAgent);
        _client.DefaultRequestHeaders.AcceptEncoding.ParseAdd("gzip, deflate, br");
        _client.DefaultRequestHeaders.Accept.ParseAdd("text/html,application/xhtml+xml;q=0.9,*/*;q=0.5");
    }

    /// <param name="permit">Called for every redirect target; returns a skip reason or null to follow.</param>
    public async Task<FetchResult> FetchAsync(string url, Func<Uri, string?> permit, CancellationToken ct, bool anyContentType = false)
    {
        var current = new Uri(url);
        for (var hop = 0; hop <= _options.MaxRedirects; hop++)
        {
            HttpResponseMessage response;
            try
            {
                response = await SendWithRetriesAsync(current, ct);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                var reason = e.InnerException is BlockedAddressException blocked ? $"blocked-address: {blocked.Message}"
                    : e is HttpRequestException ? $"unreachable: {e.Message}" : "timeout";
                return new FetchResult(url, current.ToString(), 0, "", null, null, false, reason);
            }
            using (response)
            {
                var status = (int)response.StatusCode;
                if (status is >= 300 and < 400 && response.Headers.Location is { } location)
                {
                    var next = location.IsAbsoluteUri ? location : new Uri(current, location);
                    if (permit(next) is { } refusal)
                        return new FetchResult(url, next.ToString(), status, "", null, null, false, $"redirect-refused: {refusal}");
                    current = next;
                    continue;
                }
                var contentType = response.Content.Headers.ContentType?.MediaType ?? "";
                var charset = response.Content.Headers.ContentType?.CharSet;
                if (status != 200)
                    return new FetchResult(url, current.ToString(), status, contentType, charset, null, false, $"http-{status}");
                if (!anyContentType && contentType.Length > 0 && !_options.AcceptedContentTypes.Contains(contentType, StringComparer.OrdinalIgnoreCase))
                    return new FetchResult(url, current.ToString(), status, contentType, charset, null, false, $"content-type: {contentType}");
                var (body, truncated) = await ReadBodyAsync(response.Content, ct);
                if (truncated && !_options.TruncateOversized)
                    return new FetchResult(url, current.ToString(), status, contentType, charset, null, true, "too-large");
                if (!anyContentType && LooksBinary(body))
                    return new FetchResult(url, current.ToString(), status, contentType, charset, null, truncated, "binary-content");
                return new FetchResult(url, current.ToString(), status, contentType, charset, body, truncated, null);
            }
        }
        return new FetchResult(url, current.ToString(), 0, "", null, null, false, "redirect-limit");
    }

    private async Task<HttpResponseMessage> SendWithRetriesAsync(Uri uri, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(_options.RequestTimeout);
            var response = await _client.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var status = (int)response.StatusCode;
            if (status is not (429 or 503) || attempt >= _options.MaxRetries) return response;
            var wait = RetryDelay(response.Headers.RetryAfter, attempt);
            response.Dispose();
            if (wait > _options.MaxRetryAfter) wait = _options.MaxRetryAfter;
            await Task.Delay(wait, ct);
        }
    }

    private static TimeSpan RetryDelay(RetryConditionHeaderValue? retryAfter, int attempt)
    {
        if (retryAfter?.Delta is { } delta) return delta;
        if (retryAfter?.Date is { } date) return date - DateTimeOffset.UtcNow is var d && d > TimeSpan.Zero ? d : TimeSpan.Zero;
        return TimeSpan.FromMilliseconds(250 * Math.Pow(2, attempt));
    }

    private async Task<(byte[] Body, bool Truncated)> ReadBodyAsync(HttpContent content, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.RequestTimeout);
        await using var raw = await content.ReadAsStreamAsync(timeout.Token);
        Stream stream = content.Headers.ContentEncoding.LastOrDefault()?.ToLowerInvariant() switch
        {
            "gzip" or "x-gzip" => new GZipStream(raw, CompressionMode.Decompress),
            "deflate" => new ZLibStream(raw, CompressionMode.Decompress),
            "br" => new BrotliStream(raw, CompressionMode.Decompress),
            _ => raw,
        };
        await using (stream)
        {
            var limit = _options.MaxBodyBytes;
            var buffer = new byte[limit + 1];
            var total = 0;
            try
            {
                int read;
                while (total <= limit && (read = await stream.ReadAsync(buffer.AsMemory(total, limit + 1 - total), timeout.Token)) > 0)
                    total += read;
            }
            catch (InvalidDataException)
            {
                // A corrupt compressed stream: keep what decoded.
            }
            var truncated = total > limit;
            return (buffer.AsSpan(0, Math.Min(total, limit)).ToArray(), truncated);
        }
    }

    private static bool LooksBinary(byte[] body)
    {
        var sample = body.AsSpan(0, Math.Min(body.Length, 1024));
        var zeros = 0;
        foreach (var b in sample) if (b == 0) zeros++;
        return zeros > 0 && !(body.Length > 1 && (body[0] is 0xFF or 0xFE));
    }

    public void Dispose() => _client.Dispose();
}
