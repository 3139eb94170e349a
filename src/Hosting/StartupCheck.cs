using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Pipeline.Runtime;
using Pipeline.Storage;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Pipeline.Hosting;

/// <summary>
/// What a process checks before it starts its bus: the ledger opens, the bucket answers with these credentials, and
/// the broker accepts them. A wrong password, a missing vhost or bucket, a corrupt ledger is then one error naming
/// it (an <see cref="InvalidOperationException"/> for the CLI's `error:` line), not a service that starts silently
/// and fails when work arrives. A broker or store that is not up yet is waited for, with a log line saying so.
/// </summary>
public static class StartupCheck
{
    public static async Task RunAsync(IServiceProvider services, ILogger logger, CancellationToken ct, TimeSpan? waitForServers = null)
    {
        var options = services.GetRequiredService<PipelineOptions>();
        _ = services.GetRequiredService<Ledger>(); // opening it migrates it; a bad ledger throws here
        var store = services.GetRequiredService<ShardStore>();
        var deadline = DateTime.UtcNow + (waitForServers ?? TimeSpan.FromSeconds(30));
        await UntilUpAsync(() => store.CheckRemoteAsync(ct), "storage", deadline, logger, ct);
        if (options.Transport == TransportKind.RabbitMq)
            await UntilUpAsync(() => CheckBrokerAsync(options.RabbitMq, ct), "broker", deadline, logger, ct);
    }

    /// <summary>A server that refuses the connection may still be starting: try again until the deadline; anything else fails at once.</summary>
    private static async Task UntilUpAsync(Func<Task> check, string what, DateTime deadline, ILogger logger, CancellationToken ct)
    {
        while (true)
        {
            try
            {
                await check();
                return;
            }
            catch (ServerDownException e) when (DateTime.UtcNow < deadline)
            {
                logger.LogWarning("waiting for the {What}: {Reason}", what, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(2), ct);
            }
            catch (ServerDownException e)
            {
                throw new InvalidOperationException(e.Message, e);
            }
        }
    }

    private static async Task CheckBrokerAsync(RabbitMqOptions rabbit, CancellationToken ct)
    {
        var where = $"broker amqp://{rabbit.Username}@{rabbit.Host}:{rabbit.Port}/{Uri.EscapeDataString(rabbit.VirtualHost)}";
        var factory = new ConnectionFactory
        {
            HostName = rabbit.Host,
            Port = rabbit.Port,
            VirtualHost = rabbit.VirtualHost,
            UserName = rabbit.Username ?? "",
            Password = rabbit.Password ?? "",
            RequestedConnectionTimeout = TimeSpan.FromSeconds(10),
            AutomaticRecoveryEnabled = false,
        };
        try
        {
            await using var connection = await factory.CreateConnectionAsync("pipeline startup check", ct);
            // The broker may accept the handshake and close the connection just after (a vhost it does not have):
            // a channel is opened only on a connection that stayed.
            await using var channel = await connection.CreateChannelAsync(cancellationToken: ct);
        }
        catch (BrokerUnreachableException e)
        {
            var cause = Innermost(e);
            if (cause is AuthenticationFailureException or PossibleAuthenticationFailureException)
                throw new InvalidOperationException($"{where}: the broker refused the credentials (Pipeline:RabbitMq:Username and Password): {cause.Message}", e);
            if (cause is OperationInterruptedException { ShutdownReason.ReplyCode: 530 } refused)
                throw new InvalidOperationException($"{where}: {refused.ShutdownReason.ReplyText} (Pipeline:RabbitMq:VirtualHost; create it or name another)", e);
            throw new ServerDownException($"{where}: {cause.Message}", e);
        }
        catch (Exception e) when (e is OperationInterruptedException or AlreadyClosedException)
        {
            var reason = (e as OperationInterruptedException)?.ShutdownReason ?? (e as AlreadyClosedException)?.ShutdownReason;
            throw new InvalidOperationException(reason?.ReplyCode == 530
                ? $"{where}: {reason.ReplyText} (Pipeline:RabbitMq:VirtualHost; create it or name another)"
                : $"{where}: {reason?.ReplyText ?? e.Message}", e);
        }
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e;
    }

    private sealed class ServerDownException(string message, Exception inner) : Exception(message, inner);
}

/// <summary>Collects the receive endpoints as they become ready, so a service can say in one line which queues it consumes.</summary>
public sealed class ReadyEndpoints : IReceiveEndpointObserver
{
    private readonly System.Collections.Concurrent.ConcurrentQueue<Uri> _ready = new();

    public IReadOnlyList<Uri> Addresses => _ready.ToList();

    public Task Ready(ReceiveEndpointReady ready)
    {
        _ready.Enqueue(ready.InputAddress);
        return Task.CompletedTask;
    }

    public Task Stopping(ReceiveEndpointStopping stopping) => Task.CompletedTask;
    public Task Completed(ReceiveEndpointCompleted completed) => Task.CompletedTask;
    public Task Faulted(ReceiveEndpointFaulted faulted) => Task.CompletedTask;
}
