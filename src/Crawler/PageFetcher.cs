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
/// the address guard), retries of transient failures with back-off and jitter honouring Retry-After, a request timeout, a body size limit
/// and decompression done here, bounded, so a gzip bomb stops at the limit.
/// </summary>
public sealed class PageFetcher : IDisposable
{
    private readonly HttpClient _client;
    private readonly CrawlOptions _options;
    private readonly AddressGuard _guard;
    private readonly Uri? _proxy;

    public PageFetcher(CrawlOptions options)
    {
        _options = options;
        _guard = new AddressGuard(options.AllowedAddressRanges);
        if (options.Proxy is { Length: > 0 } proxy)
        {
            if (!Uri.TryCreate(proxy, UriKind.Absolute, out _proxy) || _proxy.Scheme != Uri.UriSchemeHttp)
                throw new ArgumentException($"Pipeline:Crawler:Proxy: '{proxy}' is not an http://host:port proxy address");
        }
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            // The environment's HTTP(S)_PROXY is never used implicitly: through a proxy the connect callback would
            // only see the proxy's address, so a proxy must be configured, and then targets are checked before sending.
            UseProxy = _proxy is not null,
            Proxy = _proxy is null ? null : new WebProxy(_proxy),
            ConnectCallback = _guard.ConnectCallback(_proxy),
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
        if (!Uri.TryCreate(url, UriKind.Absolute, out var current) || !IsHttp(current))
            return new FetchResult(url, url, 0, "", null, null, false, "scheme");
        for (var hop = 0; hop <= _options.MaxRedirects; hop++)
        {
            HttpResponseMessage response;
            try
            {
                // Through a proxy the connect callback sees the proxy, so the target is checked here (a name that
                // resolves differently for the proxy can still slip through; docs/crawler.md says so).
                if (_proxy is not null) await _guard.ResolveAllowedAsync(current.IdnHost, ct);
                response = await SendWithRetriesAsync(current, ct);
            }
            catch (Exception e) when (!ct.IsCancellationRequested)
            {
                var reason = (e as BlockedAddressException ?? e.InnerException as BlockedAddressException) is { } blocked ? $"blocked-address: {blocked.Message}"
                    : e is HttpRequestException ? $"unreachable: {e.Message}"
                    : e is OperationCanceledException ? "timeout"
                    : $"fetch-error: {e.GetType().Name}: {e.Message}";
                return new FetchResult(url, current.ToString(), 0, "", null, null, false, reason);
            }
            using (response)
            {
                var status = (int)response.StatusCode;
                if (status is >= 300 and < 400 && response.Headers.Location is { } location)
                {
                    var next = location.IsAbsoluteUri ? location : new Uri(current, location);
                    if ((IsHttp(next) ? permit(next) : "scheme") is { } refusal)
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
                byte[] body;
                bool truncated;
                try
                {
                    (body, truncated) = await ReadBodyAsync(response.Content, ct);
                }
                catch (Exception e) when (!ct.IsCancellationRequested)
                {
                    // The connection broke or stalled mid-body: a failed fetch of this page, never a crashed crawl.
                    var reason = e is OperationCanceledException ? "timeout" : $"unreachable: {e.Message}";
                    return new FetchResult(url, current.ToString(), status, contentType, charset, null, false, reason);
                }
                if (truncated && !_options.TruncateOversized)
                    return new FetchResult(url, current.ToString(), status, contentType, charset, null, true, "too-large");
                if (!anyContentType && LooksBinary(body))
                    return new FetchResult(url, current.ToString(), status, contentType, charset, null, truncated, "binary-content");
                return new FetchResult(url, current.ToString(), status, contentType, charset, body, truncated, null);
            }
        }
        return new FetchResult(url, current.ToString(), 0, "", null, null, false, "redirect-limit");
    }

    /// <summary>Requests retried after a transient failure, over the fetcher's life (the crawl summary reports it).</summary>
    public long Retries => Interlocked.Read(ref _retries);

    private long _retries;

    /// <summary>
    /// Sends a GET, retrying what is usually transient: connection errors and resets, timeouts, and 429, 500, 502,
    /// 503 and 504, up to MaxRetries times, with exponential back-off and jitter, or after Retry-After when the
    /// server gives one (capped at MaxRetryAfter). A refusal by the address guard is final, never retried.
    /// </summary>
    private async Task<HttpResponseMessage> SendWithRetriesAsync(Uri uri, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            HttpResponseMessage response;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                timeout.CancelAfter(_options.RequestTimeout);
                try
                {
                    response = await _client.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                }
                catch (Exception e) when (attempt < _options.MaxRetries && !ct.IsCancellationRequested && IsTransient(e))
                {
                    Interlocked.Increment(ref _retries);
                    await Task.Delay(RetryDelay(null, attempt), ct);
                    continue;
                }
            }
            var status = (int)response.StatusCode;
            if (status is not (429 or 500 or 502 or 503 or 504) || attempt >= _options.MaxRetries) return response;
            var wait = RetryDelay(response.Headers.RetryAfter, attempt);
            response.Dispose();
            Interlocked.Increment(ref _retries);
            await Task.Delay(wait, ct);
        }
    }

    private static bool IsTransient(Exception e) =>
        e is OperationCanceledException || (e is HttpRequestException && e.InnerException is not BlockedAddressException);

    private TimeSpan RetryDelay(RetryConditionHeaderValue? retryAfter, int attempt)
    {
        TimeSpan wait;
        if (retryAfter?.Delta is { } delta) wait = delta;
        else if (retryAfter?.Date is { } date) wait = date - DateTimeOffset.UtcNow is var d && d > TimeSpan.Zero ? d : TimeSpan.Zero;
        // Exponential back-off with full jitter on [0.5, 1.5) of the step, so that many fetchers do not retry in step.
        else wait = TimeSpan.FromMilliseconds(250 * Math.Pow(2, attempt) * (0.5 + Random.Shared.NextDouble()));
        return wait > _options.MaxRetryAfter ? _options.MaxRetryAfter : wait;
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
            // The buffer grows with the body (from the declared length, when there is one, or 64 KiB), never to the
            // limit up front: a 1 GB MaxBodyBytes must not cost 1 GB per fetch of a 2 KB page.
            var limit = _options.MaxBodyBytes;
            var declared = content.Headers.ContentLength is { } length && length > 0 ? length : 64 * 1024;
            using var body = new MemoryStream((int)Math.Min(declared, Math.Min(limit, 16L * 1024 * 1024)));
            var chunk = new byte[64 * 1024];
            var truncated = false;
            try
            {
                int read;
                while ((read = await stream.ReadAsync(chunk, timeout.Token)) > 0)
                {
                    var room = limit - body.Length;
                    body.Write(chunk, 0, (int)Math.Min(read, room));
                    if (read > room)
                    {
                        truncated = true;
                        break;
                    }
                }
            }
            catch (InvalidDataException)
            {
                // A corrupt compressed stream: keep what decoded.
            }
            return (body.ToArray(), truncated);
        }
    }

    private static bool IsHttp(Uri uri) => uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps;

    private static bool LooksBinary(byte[] body)
    {
        var sample = body.AsSpan(0, Math.Min(body.Length, 1024));
        var zeros = 0;
        foreach (var b in sample) if (b == 0) zeros++;
        return zeros > 0 && !(body.Length > 1 && (body[0] is 0xFF or 0xFE));
    }

    public void Dispose() => _client.Dispose();
}
