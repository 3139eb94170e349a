using System.Net.Http.Headers;
using System.Net.Http.Json;
using RabbitMQ.Client;

namespace Pipeline.Cli.Tests;

/// <summary>
/// The real broker the tests use (guest@127.0.0.1:5672, as .ci/run and scripts/rabbitmq-local.sh start it), with a
/// virtual host of the test's own, made through the management API and deleted afterwards: queues a test leaves
/// behind (messages no consumer took, redeliveries, error queues) can never reach the next test's services.
/// Override with PIPELINE__RABBITMQ__HOST / __PORT / __USERNAME / __PASSWORD and RABBITMQ_MANAGEMENT_URL.
/// </summary>
internal sealed class RabbitMqBroker : IDisposable
{
    private static string Env(string name, string fallback) => Environment.GetEnvironmentVariable($"PIPELINE__RABBITMQ__{name}") ?? fallback;

    private static readonly string Host = Env("HOST", "127.0.0.1");
    private static readonly string Port = Env("PORT", "5672");
    private static readonly string Username = Env("USERNAME", "guest");
    private static readonly string Password = Env("PASSWORD", "guest");
    private static readonly Uri Management = new(Environment.GetEnvironmentVariable("RABBITMQ_MANAGEMENT_URL") ?? "http://127.0.0.1:15672/");

    private readonly string _virtualHost = "test-" + Guid.NewGuid().ToString("N")[..12];
    private bool _created;

    /// <summary>Settings as a deployment passes them to `pipeline serve` and `run`: PIPELINE__SECTION__KEY variables.</summary>
    public static Dictionary<string, string?> AsEnvironment(IReadOnlyDictionary<string, string?> settings) => settings.ToDictionary(
        kv => "PIPELINE__" + kv.Key["Pipeline:".Length..].Replace(":", "__").ToUpperInvariant(), kv => kv.Value);

    public IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["Pipeline:Transport"] = "RabbitMq",
        ["Pipeline:RabbitMq:Host"] = Host,
        ["Pipeline:RabbitMq:Port"] = Port,
        ["Pipeline:RabbitMq:VirtualHost"] = _virtualHost,
        ["Pipeline:RabbitMq:Username"] = Username,
        ["Pipeline:RabbitMq:Password"] = Password,
    };

    private ConnectionFactory Factory => new()
    {
        HostName = Host,
        Port = int.Parse(Port),
        VirtualHost = _virtualHost,
        UserName = Username,
        Password = Password,
    };

    private static HttpClient ManagementClient()
    {
        var client = new HttpClient { BaseAddress = Management, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{Username}:{Password}")));
        return client;
    }

    private string VirtualHostPath => Uri.EscapeDataString(_virtualHost);

    /// <summary>
    /// Makes the test's virtual host and checks that it takes connections; fails with a clear message when no broker
    /// answers: these tests need the real one.
    /// </summary>
    public async Task RequireAsync()
    {
        try
        {
            using var client = ManagementClient();
            (await client.PutAsync($"api/vhosts/{VirtualHostPath}", null)).EnsureSuccessStatusCode();
            _created = true;
            (await client.PutAsJsonAsync($"api/permissions/{VirtualHostPath}/{Uri.EscapeDataString(Username)}",
                new { configure = ".*", write = ".*", read = ".*" })).EnsureSuccessStatusCode();
            await using var connection = await Factory.CreateConnectionAsync();
        }
        catch (Exception e)
        {
            Assert.Fail($"RabbitMQ is not reachable at {Host}:{Port} with its management API at {Management} ({e.Message}); start one with scripts/rabbitmq-local.sh start (README, 'Tests')");
        }
    }

    /// <summary>
    /// The test's broker replaced by a new, empty one, as a node started afresh is (scripts/rabbitmq-local.sh stop and
    /// start): its virtual host is deleted, with every queue, binding and message and every connection to it, and
    /// made again empty after <paramref name="away"/>. Other tests' virtual hosts are untouched.
    /// </summary>
    public async Task ReplaceWithEmptyAsync(TimeSpan away)
    {
        using var client = ManagementClient();
        (await client.DeleteAsync($"api/vhosts/{VirtualHostPath}")).EnsureSuccessStatusCode();
        await Task.Delay(away);
        (await client.PutAsync($"api/vhosts/{VirtualHostPath}", null)).EnsureSuccessStatusCode();
        (await client.PutAsJsonAsync($"api/permissions/{VirtualHostPath}/{Uri.EscapeDataString(Username)}",
            new { configure = ".*", write = ".*", read = ".*" })).EnsureSuccessStatusCode();
    }

    /// <summary>Messages waiting in a queue, or 0 when the queue does not exist.</summary>
    public async Task<uint> MessageCountAsync(string queue) => (await DeclarePassiveAsync(queue))?.MessageCount ?? 0;

    /// <summary>Consumers attached to a queue, or 0 when the queue does not exist.</summary>
    public async Task<uint> ConsumerCountAsync(string queue) => (await DeclarePassiveAsync(queue))?.ConsumerCount ?? 0;

    private async Task<QueueDeclareOk?> DeclarePassiveAsync(string queue)
    {
        await using var connection = await Factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        try
        {
            return await channel.QueueDeclarePassiveAsync(queue);
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            return null;
        }
    }

    /// <summary>Takes one message off a queue and returns its headers (MassTransit puts the fault reason there).</summary>
    public async Task<IDictionary<string, object?>?> TakeHeadersAsync(string queue)
    {
        await using var connection = await Factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var result = await channel.BasicGetAsync(queue, autoAck: true);
        return result?.BasicProperties.Headers;
    }

    /// <summary>Each queue of the test's virtual host with its ready and unacknowledged messages and its consumers.</summary>
    public async Task<string> DescribeQueuesAsync()
    {
        try
        {
            using var client = ManagementClient();
            var queues = await client.GetFromJsonAsync<List<QueueState>>($"api/queues/{VirtualHostPath}?columns=name,messages_ready,messages_unacknowledged,consumers");
            return string.Join("; ", queues!.OrderBy(q => q.Name).Select(q => $"{q.Name}: {q.Ready} ready, {q.Unacked} unacked, {q.Consumers} consumers"));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException)
        {
            return $"(queues unknown: {e.Message})";
        }
    }

    private sealed record QueueState(
        [property: System.Text.Json.Serialization.JsonPropertyName("name")] string Name,
        [property: System.Text.Json.Serialization.JsonPropertyName("messages_ready")] long Ready,
        [property: System.Text.Json.Serialization.JsonPropertyName("messages_unacknowledged")] long Unacked,
        [property: System.Text.Json.Serialization.JsonPropertyName("consumers")] long Consumers);

    /// <summary>Deletes the test's virtual host with every queue and message in it.</summary>
    public void Dispose()
    {
        if (!_created) return;
        using var client = ManagementClient();
        try
        {
            client.DeleteAsync($"api/vhosts/{VirtualHostPath}").GetAwaiter().GetResult();
        }
        catch (HttpRequestException)
        {
            // The broker is gone (a test stopped it, or CI is tearing down): nothing is left to reach another test.
        }
    }
}
