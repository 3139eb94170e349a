using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Pipeline.Hosting;
using Pipeline.Runtime;

namespace Pipeline.Dashboard;

/// <summary>
/// `pipeline serve dashboard`: Kestrel serving server-rendered pages over the run ledger, with live updates by
/// server-sent events. Read-only, except cancelling a training run, which always needs the token. It listens on
/// loopback unless configured otherwise, and refuses to listen beyond loopback without a token.
/// </summary>
public static class DashboardServer
{
    private const string TokenCookie = "pipeline-dashboard-token";

    /// <param name="cancelTraining">Asks the trainer to stop a training run (publishes CancelTraining); null: not offered.</param>
    public static WebApplication Build(PipelineOptions pipeline, RunLedger ledger, Func<string, CancellationToken, Task>? cancelTraining, TimeSpan? poll = null)
    {
        var options = pipeline.Dashboard;
        var loopback = options.Host == "localhost" || IPAddress.TryParse(options.Host, out var address) && IPAddress.IsLoopback(address);
        if (!loopback && string.IsNullOrEmpty(options.Token))
            throw new ArgumentException($"Pipeline:Dashboard:Host is {options.Host}: a dashboard reachable beyond loopback needs Pipeline:Dashboard:Token (set PIPELINE__DASHBOARD__TOKEN)");
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://{(options.Host.Contains(':') ? $"[{options.Host}]" : options.Host)}:{options.Port}");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var pages = new DashboardPages(ledger, canCancel: cancelTraining is not null && !string.IsNullOrEmpty(options.Token));
        var queues = options.RabbitMqManagementUrl is { } management ? new QueueReader(management, pipeline.RabbitMq) : null;
        var interval = poll ?? TimeSpan.FromSeconds(1);

        app.Use(async (context, next) =>
        {
            var headers = context.Response.Headers;
            headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";
            headers.XContentTypeOptions = "nosniff";
            headers["Referrer-Policy"] = "no-referrer";
            // Checked on every request when there is a token, so that ?token= sets the cookie the cancel form needs.
            var authorized = !string.IsNullOrEmpty(options.Token) && HasToken(context, options.Token);
            if (!loopback && !authorized)
            {
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                await context.Response.WriteAsync("this dashboard needs its token: open it once with ?token=... or send Authorization: Bearer ...");
                return;
            }
            await next();
        });

        app.MapGet("/", () => Html(pages.Runs()));
        app.MapGet("/dashboard.js", () => Asset("dashboard.js", "text/javascript"));
        app.MapGet("/dashboard.css", () => Asset("dashboard.css", "text/css"));
        app.MapGet("/runs/{id}", async (string id, CancellationToken ct) =>
            pages.RunFragment(id, queues is null ? null : await queues.ReadAsync(ct)) is { } fragment ? Html(pages.RunPage(id, fragment)) : NotFound(id));
        app.MapGet("/runs/{id}/fragment", async (string id, CancellationToken ct) =>
            pages.RunFragment(id, queues is null ? null : await queues.ReadAsync(ct)) is { } fragment ? Html(fragment) : NotFound(id));
        app.MapGet("/runs/{id}/events", async (HttpContext context, string id) =>
        {
            // One "update" event whenever the ledger changes; a comment line every 15 s keeps proxies from closing it.
            context.Response.ContentType = "text/event-stream";
            context.Response.Headers.CacheControl = "no-cache";
            var ct = context.RequestAborted;
            var last = ledger.ChangeMark();
            var quiet = 0;
            await context.Response.WriteAsync("retry: 2000\n\n", ct);
            await context.Response.Body.FlushAsync(ct);
            try
            {
                while (!ct.IsCancellationRequested)
                {
                    await Task.Delay(interval, ct);
                    var mark = ledger.ChangeMark();
                    if (mark != last)
                    {
                        last = mark;
                        quiet = 0;
                        await context.Response.WriteAsync($"event: update\ndata: {mark.Length}\n\n", ct);
                    }
                    else if (++quiet * interval.TotalSeconds >= 15)
                    {
                        quiet = 0;
                        await context.Response.WriteAsync(": ping\n\n", ct);
                    }
                    await context.Response.Body.FlushAsync(ct);
                }
            }
            catch (OperationCanceledException)
            {
                // The browser left.
            }
        });
        app.MapPost("/runs/{id}/cancel-training", async (HttpContext context, string id) =>
        {
            if (cancelTraining is null || string.IsNullOrEmpty(options.Token))
                return Results.Text("cancelling training needs Pipeline:Dashboard:Token", statusCode: StatusCodes.Status403Forbidden);
            if (!HasToken(context, options.Token)) return Results.Text("wrong or missing token", statusCode: StatusCodes.Status401Unauthorized);
            var form = await context.Request.ReadFormAsync(context.RequestAborted);
            var run = form["run"].ToString();
            if (ledger.Get(LedgerKeys.Job(JobKinds.Training, run)) is null)
                return Results.Text($"no training run '{run}'", statusCode: StatusCodes.Status404NotFound);
            await cancelTraining(run, context.RequestAborted);
            return Results.Redirect($"/runs/{Uri.EscapeDataString(id)}", permanent: false);
        });
        return app;
    }

    /// <summary>The token from the Authorization header or the cookie; ?token= also sets the cookie for the next requests.</summary>
    private static bool HasToken(HttpContext context, string token)
    {
        static bool Same(string? given, string token) =>
            given is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(token));
        var header = context.Request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.Ordinal) && Same(header["Bearer ".Length..], token)) return true;
        if (Same(context.Request.Cookies[TokenCookie], token)) return true;
        if (Same(context.Request.Query["token"].FirstOrDefault(), token))
        {
            context.Response.Cookies.Append(TokenCookie, token, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, IsEssential = true });
            return true;
        }
        return false;
    }

    private static IResult Html(string html) => Results.Content(html, "text/html; charset=utf-8");

    private static IResult NotFound(string id) => Results.Content(DashboardPages.Layout("not found", $"<main><p>no run '{WebUtility.HtmlEncode(id)}' in the ledger</p></main>"), "text/html; charset=utf-8", statusCode: 404);

    private static IResult Asset(string name, string type)
    {
        using var stream = typeof(DashboardServer).Assembly.GetManifestResourceStream(name)!;
        using var reader = new StreamReader(stream);
        return Results.Content(reader.ReadToEnd(), type + "; charset=utf-8");
    }

    /// <summary>Queue depths and consumers from RabbitMQ's management API, read at most every 2 s.</summary>
    private sealed class QueueReader(string url, RabbitMqOptions rabbit)
    {
        private readonly HttpClient _http = new() { BaseAddress = new Uri(url.TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(3) };
        private (DateTime At, IReadOnlyList<QueueInfo> Queues)? _cached;

        public async Task<IReadOnlyList<QueueInfo>> ReadAsync(CancellationToken ct)
        {
            if (_cached is { } c && DateTime.UtcNow - c.At < TimeSpan.FromSeconds(2)) return c.Queues;
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, "api/queues");
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{rabbit.Username}:{rabbit.Password}")));
                using var response = await _http.SendAsync(request, ct);
                response.EnsureSuccessStatusCode();
                using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
                var queues = json.RootElement.EnumerateArray().Select(q => new QueueInfo(q.GetProperty("name").GetString() ?? "",
                    q.TryGetProperty("messages", out var m) && m.ValueKind == JsonValueKind.Number ? m.GetInt64() : 0,
                    q.TryGetProperty("consumers", out var k) && k.ValueKind == JsonValueKind.Number ? k.GetInt64() : 0)).ToList();
                _cached = (DateTime.UtcNow, queues);
                return queues;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException && !ct.IsCancellationRequested)
            {
                return [new QueueInfo($"(management API unavailable: {e.Message})", 0, 0)];
            }
        }
    }
}
