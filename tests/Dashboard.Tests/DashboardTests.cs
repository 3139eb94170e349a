using System.Net;
using System.Text.Json;
using Microsoft.Playwright;
using Pipeline.Contracts.V1;
using Pipeline.Hosting;
using Pipeline.Runtime;

namespace Pipeline.Dashboard.Tests;

public sealed class DashboardTests : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("dashboard-").FullName;
    private readonly List<string> _cancelled = [];
    private Ledger _ledger = null!;
    private Microsoft.AspNetCore.Builder.WebApplication _app = null!;
    private string _address = "";

    private static ShardRef Shard(string stage, int n, long rows) =>
        new($"{stage}-{n}", $"shards/{stage}/r/{n}.parquet", "sha", rows, rows * 1000, stage, "c", [], "r");

    public async Task InitializeAsync()
    {
        // A run as the services leave it mid-way: crawl, clean and dedup shards, a failed input (whose error holds
        // markup, as a hostile page's URL can), a running training job with its curve, one scored checkpoint.
        _ledger = new Ledger(Path.Combine(_root, "ledger.db"));
        _ledger.Runs.Ensure("r", "r-gpt", "{}");
        _ledger.Artifacts.CompleteInput("crawl", "crawl-1", "r", [Shard("crawl", 1, 100)]);
        _ledger.Artifacts.CompleteInput("crawl", "crawl-2", "r", [Shard("crawl", 2, 60)]);
        _ledger.Artifacts.CompleteInput("clean", "crawl-1", "r", [Shard("clean", 1, 70)]);
        _ledger.Artifacts.CompleteInput("dedup", "clean-1", "r", [Shard("dedup", 1, 65)]);
        _ledger.Artifacts.FailInput("clean", "crawl-2", "r", "shard 'http://x/<script>alert(1)</script>' failed its checksum");
        _ledger.Documents.Set(LedgerKeys.CrawlSummary("r"), JsonSerializer.Serialize(new { Pages = 160, Shards = 2, ByState = new { done = 160, skipped = 4 }, ByReason = new { robots = 4 } }));
        _ledger.Documents.Set("training:r-gpt", """{"Request":{},"State":"running","Error":null}""");
        for (var step = 1; step <= 5; step++) _ledger.Evaluations.AddMetric("r-gpt", "train", step, "loss", 6 - step * 0.2);
        _ledger.Evaluations.AddEval("r-gpt", 5, "checkpoints/r-gpt/step-0000005", "validation_perplexity", "1", new Dictionary<string, double> { ["loss"] = 5.5 });

        var port = FreePort();
        var options = new PipelineOptions { Dashboard = { Port = port, Token = "secret-token" } };
        _app = DashboardServer.Build(options, _ledger, (run, _) =>
        {
            lock (_cancelled) _cancelled.Add(run);
            return Task.CompletedTask;
        }, TimeSpan.FromMilliseconds(200));
        await _app.StartAsync();
        _address = $"http://127.0.0.1:{port}";
    }

    [Fact]
    [Trait("Category", "Browser")]
    public async Task The_run_page_shows_the_stages_and_a_new_checkpoint_appears_live_in_chromium()
    {
        using var playwright = await Playwright.CreateAsync();
        // Debian's chromium, not a Playwright download (none is possible here).
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Environment.GetEnvironmentVariable("PIPELINE_TEST_CHROMIUM") ?? "/usr/bin/chromium",
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1300, Height = 1600 } });
        var errors = new List<string>();
        page.Console += (_, message) => { if (message.Type == "error") lock (errors) errors.Add(message.Text); };
        page.PageError += (_, error) => { lock (errors) errors.Add(error); };

        // ?token= once (it sets the cookie the cancel form needs).
        await page.GotoAsync($"{_address}/runs/r?token=secret-token");
        Assert.Equal(["crawl", "clean", "dedup"], await page.Locator("#stages tr[data-stage]").EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.stage)"));
        Assert.Equal("160", await page.Locator("#stages tr[data-stage=crawl] td:nth-child(3)").InnerTextAsync());
        Assert.Contains("<script>alert(1)</script>", await page.Locator("#stages .error").InnerTextAsync()); // shown as text, not run
        Assert.Equal(1, await page.Locator("#evaluation tr.checkpoint").CountAsync());
        await page.WaitForFunctionAsync("document.getElementById('live').textContent.startsWith('live')", null, new PageWaitForFunctionOptions { Timeout = 10_000 });

        // A new checkpoint is scored while the page is open: it appears without a reload (the marker survives).
        await page.EvaluateAsync("window.marker = 42");
        _ledger.Evaluations.AddEval("r-gpt", 10, "checkpoints/r-gpt/step-0000010", "validation_perplexity", "1", new Dictionary<string, double> { ["loss"] = 5.1 });
        await page.Locator("tr.checkpoint[data-checkpoint='checkpoints/r-gpt/step-0000010']").WaitForAsync(new LocatorWaitForOptions { Timeout = 15_000 });
        Assert.Equal(42, await page.EvaluateAsync<int>("window.marker"));
        // The screenshot (a test artifact beside the binaries) through the DevTools protocol: Playwright's own waits on
        // the page's fonts, which this chromium build never reports ready headless.
        var cdp = await page.Context.NewCDPSessionAsync(page);
        var shot = await cdp.SendAsync("Page.captureScreenshot", new Dictionary<string, object> { ["format"] = "png", ["captureBeyondViewport"] = true });
        await File.WriteAllBytesAsync(Path.Combine(AppContext.BaseDirectory, "dashboard-run-page.png"), Convert.FromBase64String(shot!.Value.GetProperty("data").GetString()!));

        // The one write: cancelling the running training, with the token.
        var posted = page.WaitForResponseAsync(r => r.Url.EndsWith("/cancel-training"));
        await page.Locator("#jobs button").ClickAsync();
        var response = await posted;
        if (response.Status != 302) Assert.Fail($"cancel answered {response.Status}: {await response.TextAsync()}");
        // Back on the run page once the redirect's navigation is committed. Polled: WaitForURLAsync, when the URL already
        // matches, waits for the page's load event instead, which the live page's event stream can hold off.
        var back = DateTime.UtcNow.AddSeconds(30);
        while (page.Url != $"{_address}/runs/r")
        {
            Assert.True(DateTime.UtcNow < back, $"still on {page.Url} after the cancel");
            await Task.Delay(50);
        }
        lock (_cancelled) Assert.Equal(["r-gpt"], _cancelled);
        lock (errors) Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public async Task Another_page_of_this_host_cannot_drive_or_read_the_dashboard()
    {
        // Regression (#26): a page on another port (same site, so SameSite=Strict did not help) could post the cancel
        // form with the dashboard's cookie, the cookie held the token itself, and any Host header was answered.
        var cookies = new CookieContainer();
        using var handler = new HttpClientHandler { CookieContainer = cookies, UseCookies = true, AllowAutoRedirect = false };
        using var http = new HttpClient(handler) { BaseAddress = new Uri(_address) };
        var login = await http.GetAsync("/runs/r?token=secret-token");
        login.EnsureSuccessStatusCode();
        var setCookies = string.Join("\n", login.Headers.GetValues("Set-Cookie"));
        Assert.DoesNotContain("secret-token", setCookies);
        Assert.Contains("pipeline-dashboard-session=", setCookies);
        var page = await login.Content.ReadAsStringAsync();
        var field = System.Text.RegularExpressions.Regex.Match(page, "name=\"__RequestVerificationToken\" value=\"([^\"]+)\"");
        Assert.True(field.Success, "the cancel form carries an anti-forgery token");

        async Task<HttpStatusCode> Post(Dictionary<string, string> form, params (string Name, string Value)[] headers)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/runs/r/cancel-training") { Content = new FormUrlEncodedContent(form) };
            foreach (var (name, value) in headers) request.Headers.TryAddWithoutValidation(name, value);
            return (await http.SendAsync(request)).StatusCode;
        }
        var withToken = new Dictionary<string, string> { ["run"] = "r-gpt", ["__RequestVerificationToken"] = field.Groups[1].Value };
        var withoutToken = new Dictionary<string, string> { ["run"] = "r-gpt" };
        // A page on another port: its Origin, or the browser's Sec-Fetch-Site, gives it away.
        Assert.Equal(HttpStatusCode.Forbidden, await Post(withToken, ("Origin", "http://127.0.0.1:1")));
        Assert.Equal(HttpStatusCode.Forbidden, await Post(withToken, ("Sec-Fetch-Site", "same-site")));
        // A forged form (no anti-forgery token, or another's) with the session cookie.
        Assert.Equal(HttpStatusCode.Forbidden, await Post(withoutToken, ("Origin", _address)));
        Assert.Equal(HttpStatusCode.Forbidden, await Post(new(withToken) { ["__RequestVerificationToken"] = "forged" }, ("Origin", _address)));
        lock (_cancelled) Assert.Empty(_cancelled);
        // The dashboard's own form, from its own origin, works.
        Assert.Equal(HttpStatusCode.Redirect, await Post(withToken, ("Origin", _address), ("Sec-Fetch-Site", "same-origin")));
        lock (_cancelled) Assert.Equal(["r-gpt"], _cancelled);

        // DNS rebinding: a request naming another host is not answered.
        using var rebound = new HttpRequestMessage(HttpMethod.Get, "/runs/r");
        rebound.Headers.Host = "attacker.example";
        Assert.Equal(HttpStatusCode.BadRequest, (await http.SendAsync(rebound)).StatusCode);
        using var named = new HttpRequestMessage(HttpMethod.Get, "/runs/r");
        named.Headers.Host = $"localhost:{new Uri(_address).Port}";
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(named)).StatusCode);
    }

    [Fact]
    public async Task Cancelling_needs_the_token_and_a_dashboard_beyond_loopback_refuses_to_start_without_one()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_address) };
        var form = new FormUrlEncodedContent(new Dictionary<string, string> { ["run"] = "r-gpt" });
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.PostAsync("/runs/r/cancel-training", form)).StatusCode);
        using var wrong = new HttpRequestMessage(HttpMethod.Post, "/runs/r/cancel-training") { Content = form };
        wrong.Headers.Authorization = new("Bearer", "not-it");
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(wrong)).StatusCode);
        lock (_cancelled) Assert.Empty(_cancelled);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/runs/no-such-run")).StatusCode);
        var headers = (await http.GetAsync("/")).Headers;
        Assert.Contains("script-src 'self'", headers.GetValues("Content-Security-Policy").Single());

        // A run still crawling shows the crawl jobs' live counters (here two parts of a split crawl).
        _ledger.Runs.Ensure("crawling", "crawling-gpt", "{}");
        _ledger.Documents.Set(LedgerKeys.CrawlProgress("crawling", 0), "{\"Fetched\":42,\"Failed\":1,\"Queued\":7,\"Shards\":0}");
        _ledger.Documents.Set(LedgerKeys.CrawlProgress("crawling", 1), "{\"Fetched\":5,\"Failed\":0,\"Queued\":2,\"Shards\":0}");
        _ledger.Documents.Set(LedgerKeys.CrawlProgress("crawling2"), "{\"Fetched\":9}"); // another run whose id extends this one
        _ledger.Documents.Set("crawl:crawling2", "{\"Request\":{},\"State\":\"running\",\"Error\":null}");
        var crawling = await http.GetStringAsync("/runs/crawling/fragment");
        Assert.DoesNotContain("crawling2", crawling);
        Assert.Contains("<td>crawl-progress:crawling:p0</td><td class=\"n\">42</td><td class=\"n\">1</td><td class=\"n\">7</td>", crawling);
        Assert.Contains("<td>crawl-progress:crawling:p1</td><td class=\"n\">5</td>", crawling);

        var exposed = new PipelineOptions { Dashboard = { Host = "0.0.0.0", Port = FreePort() } };
        var error = Assert.Throws<ArgumentException>(() => DashboardServer.Build(exposed, _ledger, null));
        Assert.Contains("Pipeline:Dashboard:Token", error.Message);
    }

    [Fact]
    public async Task The_lineage_names_what_was_made_from_the_run_and_from_what()
    {
        // As the evaluator records them: a student distilled from step 5 (named unlike its teacher), an int8 copy of
        // that step, and a student of another run, which is not this run's.
        var loss = new Dictionary<string, double> { ["loss"] = 5.9 };
        LineageStore.Record(_ledger.Documents, new RunLineage("tiny-student", "checkpoints/r-gpt/step-0000005", "distill"));
        _ledger.Evaluations.AddEval("tiny-student", 20, "checkpoints/tiny-student/step-0000020", "validation_perplexity", "1", loss);
        LineageStore.Record(_ledger.Documents, new RunLineage("r-gpt-int8", "checkpoints/r-gpt/step-0000005", "quantize"));
        _ledger.Evaluations.AddEval("r-gpt-int8", 5, "checkpoints/r-gpt-int8/step-0000005", "validation_perplexity", "1", loss);
        LineageStore.Record(_ledger.Documents, new RunLineage("other-student", "checkpoints/other-gpt/step-0000001", "distill"));
        _ledger.Evaluations.AddEval("other-student", 20, "checkpoints/other-student/step-0000020", "validation_perplexity", "1", loss);

        // An RL job's figures per step, as the trainer service records them.
        LineageStore.Record(_ledger.Documents, new RunLineage("r-gpt-grpo", "checkpoints/r-gpt/step-0000005", "grpo"));
        for (var step = 1; step <= 3; step++)
            foreach (var (name, value) in new[] { ("loss", 0.0), ("reward", 0.1 * step), ("kl", 0.01 * step), ("clip_fraction", 0.1), ("completion_length", 12.0) })
                _ledger.Evaluations.AddMetric("r-gpt-grpo", EvaluationStore.AlignmentKind, step, name, value);

        // InstructGPT's chain, two generations below the run: SFT of step 5, then a reward model and PPO of the SFT model.
        LineageStore.Record(_ledger.Documents, new RunLineage("r-gpt-sft", "checkpoints/r-gpt/step-0000005", "sft"));
        LineageStore.Record(_ledger.Documents, new RunLineage("r-gpt-sft-rm", "checkpoints/r-gpt-sft/step-0000010", "reward"));
        LineageStore.Record(_ledger.Documents, new RunLineage("r-gpt-sft-ppo", "checkpoints/r-gpt-sft/step-0000010", "ppo", "checkpoints/r-gpt-sft-rm/step-0000010"));
        _ledger.Evaluations.AddEval("r-gpt-sft-ppo", 2, "checkpoints/r-gpt-sft-ppo/step-0000002", "validation_perplexity", "1", loss);

        using var http = new HttpClient { BaseAddress = new Uri(_address) };
        var page = await http.GetStringAsync("/runs/r/fragment");
        Assert.Contains("r-gpt step 5 → <b>sft</b> → r-gpt-sft", page);
        Assert.Contains("r-gpt-sft step 10 → <b>reward</b> → r-gpt-sft-rm", page);
        Assert.Contains("r-gpt-sft step 10 → <b>ppo</b> (rewarded by r-gpt-sft-rm step 10) → r-gpt-sft-ppo: 1 checkpoint(s)", page);
        Assert.Contains("data-checkpoint=\"checkpoints/r-gpt-sft-ppo/step-0000002\"", page);
        Assert.Contains("r-gpt-grpo: reward and KL", page);
        Assert.Contains("r-gpt-grpo: clip fraction and completion length", page);
        Assert.Contains("r-gpt step 5 → <b>grpo</b> → r-gpt-grpo", page);
        Assert.Contains("r-gpt step 5 → <b>distill</b> → tiny-student: 1 checkpoint(s)", page);
        Assert.Contains("r-gpt step 5 → <b>quantize</b> → r-gpt-int8: 1 checkpoint(s)", page);
        Assert.Contains("data-checkpoint=\"checkpoints/tiny-student/step-0000020\"", page);
        Assert.DoesNotContain("other-student", page);
        // The student's own run names its teacher.
        _ledger.Runs.Ensure("s", "tiny-student", "{}");
        Assert.Contains("r-gpt step 5 → <b>distill</b> → tiny-student</li>", await http.GetStringAsync("/runs/s/fragment"));
    }

    [Fact]
    public async Task The_runs_page_shows_each_ablation_with_its_arms_and_paired_differences()
    {
        var summary = new AblationSummary("filters", 307_200, [1, 2],
            [new AblationArmSummary("default", new Dictionary<string, string?>(), 185, 101_353, 3.03), new AblationArmSummary("unfiltered", new Dictionary<string, string?> { ["Pipeline:Cleaner:Recipe"] = "none" }, 264, 134_230, 2.29)],
            [new AblationCell("default", "heldout", "bits_per_byte", 2.54, 0.06), new AblationCell("unfiltered", "heldout", "bits_per_byte", 2.50, 0.04)],
            [new AblationDifference("heldout", "bits_per_byte", "default", "unfiltered", -0.0417, -0.1045, 0.0192), new AblationDifference("cloze", "acc", "default", "unfiltered", 0.05, 0.01, 0.09)]);
        _ledger.Documents.Set(LedgerKeys.Ablation("filters"), System.Text.Json.JsonSerializer.Serialize(summary));
        using var http = new HttpClient { BaseAddress = new Uri(_address) };
        var page = await http.GetStringAsync("/");
        Assert.Contains("<h3>filters</h3>", page);
        Assert.Contains("<td>unfiltered</td><td class=\"n\">264</td><td class=\"n\">134,230</td><td class=\"n\">2.29</td>", page);
        Assert.Contains("<td>unfiltered − default</td><td class=\"n\">-0.0417</td><td>[-0.1045, 0.0192]</td>", page);
        Assert.Contains("<td class=\"n\">0.0500 *</td>", page); // the interval excludes 0
    }

    [Fact(Timeout = 120_000)]
    public async Task Queue_depths_and_consumers_come_from_the_RabbitMQ_management_API()
    {
        // The node .ci/run starts (scripts/rabbitmq-local.sh) serves its management API on loopback.
        var management = Environment.GetEnvironmentVariable("PIPELINE_TEST_RABBITMQ_MANAGEMENT") ?? "http://127.0.0.1:15672";
        using var api = new HttpClient { BaseAddress = new Uri(management) };
        api.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String("guest:guest"u8.ToArray()));
        var queue = "dashboard-test-" + Guid.NewGuid().ToString("N")[..8];
        static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                (await api.PutAsync($"api/queues/%2F/{queue}", Json("{\"durable\":false}"))).EnsureSuccessStatusCode();
                break;
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(500); // the plugin starts a little after the node answers pings
            }
        }
        try
        {
            for (var i = 0; i < 3; i++)
                (await api.PostAsync("api/exchanges/%2F/amq.default/publish",
                    Json($"{{\"properties\":{{}},\"routing_key\":\"{queue}\",\"payload\":\"x\",\"payload_encoding\":\"string\"}}"))).EnsureSuccessStatusCode();
            var port = FreePort();
            var options = new PipelineOptions { Dashboard = { Port = port, RabbitMqManagementUrl = management }, RabbitMq = { Username = "guest", Password = "guest" } };
            await using var app = DashboardServer.Build(options, _ledger, null);
            await app.StartAsync();
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var row = $"<td>{queue}</td><td class=\"n\">3</td><td class=\"n\">0</td>";
            var page = "";
            // The management API refreshes its message counts every few seconds.
            for (var attempt = 0; attempt < 60 && !page.Contains(row, StringComparison.Ordinal); attempt++)
            {
                await Task.Delay(500);
                page = await http.GetStringAsync("/runs/r/fragment");
            }
            Assert.Contains(row, page);
            await app.StopAsync();
        }
        finally
        {
            await api.DeleteAsync($"api/queues/%2F/{queue}");
        }
    }

    private static int FreePort()
    {
        var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }
}
