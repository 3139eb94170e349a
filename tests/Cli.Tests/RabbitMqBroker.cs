using RabbitMQ.Client;

namespace Pipeline.Cli.Tests;

/// <summary>
/// The real broker the tests use: guest@127.0.0.1:5672, as .ci/run and scripts/rabbitmq-local.sh start it.
/// Override with PIPELINE__RABBITMQ__HOST / __PORT / __USERNAME / __PASSWORD.
/// </summary>
internal static class RabbitMqBroker
{
    private static string Env(string name, string fallback) => Environment.GetEnvironmentVariable($"PIPELINE__RABBITMQ__{name}") ?? fallback;

    /// <summary>Settings as a deployment passes them to `pipeline serve` and `run`: PIPELINE__SECTION__KEY variables.</summary>
    public static Dictionary<string, string?> AsEnvironment(IReadOnlyDictionary<string, string?> settings) => settings.ToDictionary(
        kv => "PIPELINE__" + kv.Key["Pipeline:".Length..].Replace(":", "__").ToUpperInvariant(), kv => kv.Value);

    public static IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["Pipeline:Transport"] = "RabbitMq",
        ["Pipeline:RabbitMq:Host"] = Env("HOST", "127.0.0.1"),
        ["Pipeline:RabbitMq:Port"] = Env("PORT", "5672"),
        ["Pipeline:RabbitMq:Username"] = Env("USERNAME", "guest"),
        ["Pipeline:RabbitMq:Password"] = Env("PASSWORD", "guest"),
    };

    public static ConnectionFactory Factory => new()
    {
        HostName = Settings["Pipeline:RabbitMq:Host"]!,
        Port = int.Parse(Settings["Pipeline:RabbitMq:Port"]!),
        UserName = Settings["Pipeline:RabbitMq:Username"]!,
        Password = Settings["Pipeline:RabbitMq:Password"]!,
    };

    /// <summary>Fails with a clear message when no broker answers: these tests need the real one.</summary>
    public static async Task RequireAsync()
    {
        try
        {
            await using var connection = await Factory.CreateConnectionAsync();
        }
        catch (Exception e)
        {
            Assert.Fail($"RabbitMQ is not reachable at {Factory.HostName}:{Factory.Port} ({e.Message}); start one with scripts/rabbitmq-local.sh start (README, 'Tests')");
        }
    }

    /// <summary>Messages waiting in a queue, or 0 when the queue does not exist.</summary>
    public static async Task<uint> MessageCountAsync(string queue)
    {
        await using var connection = await Factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        try
        {
            return (await channel.QueueDeclarePassiveAsync(queue)).MessageCount;
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            return 0;
        }
    }

    /// <summary>Consumers attached to a queue, or 0 when the queue does not exist.</summary>
    public static async Task<uint> ConsumerCountAsync(string queue)
    {
        await using var connection = await Factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        try
        {
            return (await channel.QueueDeclarePassiveAsync(queue)).ConsumerCount;
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            return 0;
        }
    }

    /// <summary>Takes one message off a queue and returns its headers (MassTransit puts the fault reason there).</summary>
    public static async Task<IDictionary<string, object?>?> TakeHeadersAsync(string queue)
    {
        await using var connection = await Factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        var result = await channel.BasicGetAsync(queue, autoAck: true);
        return result?.BasicProperties.Headers;
    }

    public static async Task PurgeAsync(string queue)
    {
        await using var connection = await Factory.CreateConnectionAsync();
        await using var channel = await connection.CreateChannelAsync();
        try
        {
            await channel.QueuePurgeAsync(queue);
        }
        catch (RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
        }
    }

    /// <summary>Stops and starts the RabbitMQ application on the local node (rabbitmqctl; node from RABBITMQ_LOCAL_NODE).</summary>
    public static async Task RestartAsync()
    {
        var node = Environment.GetEnvironmentVariable("RABBITMQ_LOCAL_NODE") ?? "ci@localhost";
        foreach (var command in new[] { "stop_app", "start_app" })
        {
            using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("rabbitmqctl", ["-n", node, command])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            var error = await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            Assert.True(process.ExitCode == 0, $"rabbitmqctl -n {node} {command} failed: {error}");
        }
    }
}
