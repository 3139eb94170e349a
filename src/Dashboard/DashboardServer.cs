using System.Net;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
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
    private const string SessionCookie = "pipeline-dashboard-session";

    /// <summary>The form field that carries the anti-forgery token (ASP.NET Core antiforgery).</summary>
    public const string FormTokenField = "__RequestVerificationToken";

    /// <param name="cancelTraining">Asks the trainer to stop a training run (publishes CancelTraining); null: not offered.</param>
    public static WebApplication Build(PipelineOptions pipeline, Ledger ledger, Func<string, CancellationToken, Task>? cancelTraining, TimeSpan? poll = null)
    {
        var options = pipeline.Dashboard;
        var loopback = options.Host == "localhost" || IPAddress.TryParse(options.Host, out var address) && IPAddress.IsLoopback(address);
        if (!loopback && string.IsNullOrEmpty(options.Token))
            throw new ArgumentException($"Pipeline:Dashboard:Host is {options.Host}: a dashboard reachable beyond loopback needs Pipeline:Dashboard:Token (set PIPELINE__DASHBOARD__TOKEN)");
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://{(options.Host.Contains(':') ? $"[{options.Host}]" : options.Host)}:{options.Port}");
        builder.Logging.ClearProviders();
        // DNS rebinding: only the bound address, loopback's names and the configured names are answered (400 otherwise).
        builder.Services.AddHostFiltering(o =>
        {
            o.AllowedHosts = AllowedHosts(options);
            o.AllowEmptyHosts = false;
            o.IncludeFailureMessage = false;
        });
        // Anti-forgery tokens for the one state-changing form, bound to the browser's session (its NameIdentifier).
        builder.Services.AddAntiforgery(o =>
        {
            o.FormFieldName = FormTokenField;
            o.Cookie.Name = "pipeline-dashboard-antiforgery";
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.SuppressXFrameOptionsHeader = true; // frame-ancestors 'none' below says it
        });
        var app = builder.Build();
        app.UseHostFiltering();
        var antiforgery = app.Services.GetRequiredService<IAntiforgery>();
        var sessions = new System.Collections.Concurrent.ConcurrentDictionary<string, DateTime>();
        var pages = new DashboardPages(ledger, canCancel: cancelTraining is not null && !string.IsNullOrEmpty(options.Token));
        var queues = options.RabbitMqManagementUrl is { } management ? new QueueReader(management, pipeline.RabbitMq) : null;
        var interval = poll ?? TimeSpan.FromSeconds(1);

        app.Use(async (context, next) =>
        {
            var headers = context.Response.Headers;
            headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";
            headers.XContentTypeOptions = "nosniff";
            // same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on the dashboard's own form
            // posts, and the origin check below needs the real one; other sites still get no referrer.
            headers["Referrer-Policy"] = "same-origin";
            // A state-changing request from another origin (a page on another port of this host is same-site, so
            // SameSite cookies do not stop it) is refused before anything else.
            if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method) && CrossOrigin(context.Request) is { } reason)
            {
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                await context.Response.WriteAsync($"refused: {reason}");
                return;
            }
            // Checked on every request when there is a token, so that ?token= starts the session the cancel form needs.
            var authorized = !string.IsNullOrEmpty(options.Token) && Authenticate(context, options.Token, sessions) is not null;
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
        // The cancel form is offered only to a browser session that presented the token, with that session's anti-forgery token.
        string? FormToken(HttpContext context) =>
            cancelTraining is not null && context.User.Identity?.IsAuthenticated == true ? antiforgery.GetAndStoreTokens(context).RequestToken : null;
        app.MapGet("/runs/{id}", async (HttpContext context, string id, CancellationToken ct) =>
            pages.RunFragment(id, queues is null ? null : await queues.ReadAsync(ct), FormToken(context)) is { } fragment ? Html(pages.RunPage(id, fragment)) : NotFound(id));
        app.MapGet("/runs/{id}/fragment", async (HttpContext context, string id, CancellationToken ct) =>
            pages.RunFragment(id, queues is null ? null : await queues.ReadAsync(ct), FormToken(context)) is { } fragment ? Html(fragment) : NotFound(id));
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
            var how = Authenticate(context, options.Token, sessions);
            if (how is null) return Results.Text("wrong or missing token", statusCode: StatusCodes.Status401Unauthorized);
            // A browser's session cookie is sent by the browser on its own, so the form must prove it came from our
            // page; a client sending the token itself (Authorization: Bearer) cannot be forged that way.
            if (how == Authenticated.Session)
            {
                try
                {
                    await antiforgery.ValidateRequestAsync(context);
                }
                catch (AntiforgeryValidationException)
                {
                    return Results.Text("refused: the form's anti-forgery token is missing or wrong (reload the page)", statusCode: StatusCodes.Status403Forbidden);
                }
            }
            var form = await context.Request.ReadFormAsync(context.RequestAborted);
            var run = form["run"].ToString();
            if (ledger.Jobs.List(JobKinds.Training, run).All(j => j.Name != run))
                return Results.Text($"no training run '{run}'", statusCode: StatusCodes.Status404NotFound);
            await cancelTraining(run, context.RequestAborted);
            return Results.Redirect($"/runs/{Uri.EscapeDataString(id)}", permanent: false);
        });
        return app;
    }

    private enum Authenticated
    {
        Bearer,
        Session,
    }

    /// <summary>
    /// How the request shows it knows the token: Authorization: Bearer, or a session cookie. ?token= once starts a
    /// session: the cookie holds a random session id, never the token, and the request's user becomes that session
    /// (so anti-forgery tokens are bound to it). Null: not at all.
    /// </summary>
    private static Authenticated? Authenticate(HttpContext context, string token, System.Collections.Concurrent.ConcurrentDictionary<string, DateTime> sessions)
    {
        static bool Same(string? given, string token) =>
            given is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(token));
        var header = context.Request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.Ordinal) && Same(header["Bearer ".Length..], token)) return Authenticated.Bearer;
        var session = context.Request.Cookies[SessionCookie];
        if (session is null || !sessions.ContainsKey(session))
        {
            if (!Same(context.Request.Query["token"].FirstOrDefault(), token)) return null;
            session = Convert.ToHexString(RandomNumberGenerator.GetBytes(32));
            sessions[session] = DateTime.UtcNow;
            context.Response.Cookies.Append(SessionCookie, session, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, IsEssential = true, Path = "/" });
        }
        context.User = new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.NameIdentifier, session)], "dashboard-session"));
        return Authenticated.Session;
    }

    /// <summary>Why a state-changing request is not from the dashboard's own pages (Sec-Fetch-Site, then Origin), or null.</summary>
    private static string? CrossOrigin(HttpRequest request)
    {
        // A browser that sends Sec-Fetch-Site has said where the request comes from; "none" is the user's own action.
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        if (site.Length > 0) return site is "same-origin" or "none" ? null : $"Sec-Fetch-Site is {site}";
        var origin = request.Headers.Origin.ToString();
        if (origin.Length > 0 && !string.Equals(origin, $"{request.Scheme}://{request.Host}", StringComparison.OrdinalIgnoreCase)) return $"Origin {origin} is not this dashboard";
        return null;
    }

    private static string[] AllowedHosts(DashboardOptions options)
    {
        var hosts = new List<string>(options.AllowedHosts);
        var bound = options.Host.Trim('[', ']');
        if (bound is "0.0.0.0" or "::" or "*") return hosts.Count > 0 ? [.. hosts] : ["*"]; // every address: the token guards it
        hosts.Add(bound.Contains(':') ? $"[{bound}]" : bound);
        if (bound == "localhost" || IPAddress.TryParse(bound, out var address) && IPAddress.IsLoopback(address))
            hosts.AddRange(["localhost", "127.0.0.1", "[::1]"]);
        return [.. hosts.Distinct(StringComparer.OrdinalIgnoreCase)];
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
