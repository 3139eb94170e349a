using System.Diagnostics;
using MassTransit;

namespace Pipeline.Hosting;

/// <summary>
/// The one publish of the project, for services and the coordinator alike: each attempt is bounded in time, and a
/// broker that is away (restarting, replaced, a network blip) is waited out for a while instead of failing the work.
/// RabbitMQ.Client 7.x can leave a publish that was in flight when the broker restarted waiting for its publisher
/// confirm forever, although the connection recovers and later publishes go through (rabbitmq/rabbitmq-dotnet-client#1930,
/// open for 7.2.2, which MassTransit 8.5 uses): such an attempt is given up and the message published once more. Every
/// consumer is idempotent, so a message that reached the broker before the error and arrives twice costs a skip.
/// </summary>
public static class BoundedPublish
{
    /// <summary>How long one attempt may take: a publish normally completes in milliseconds.</summary>
    public static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(20);

    /// <summary>How long a broker that takes nothing is waited for before the publish fails, naming the message.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);

    private static readonly TimeSpan Pause = TimeSpan.FromSeconds(1);

    public static async Task PublishBounded<T>(this IPublishEndpoint endpoint, T message, CancellationToken ct = default) where T : class
    {
        var started = Stopwatch.GetTimestamp();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await endpoint.Publish(message, ct).WaitAsync(AttemptTimeout, ct);
                return;
            }
            catch (Exception e) when (!ct.IsCancellationRequested && !CannotBeSent(e))
            {
                if (Stopwatch.GetElapsedTime(started) >= Patience)
                    throw new TimeoutException($"publishing {typeof(T).Name}: the broker took none of {attempt} attempts in {Patience.TotalMinutes:0} minutes ({e.Message})", e);
                // The abandoned attempt may still complete; the message then arrives twice, which consumers tolerate.
                if (e is not TimeoutException) await Task.Delay(Pause, ct);
            }
        }
    }

    // A message that cannot be serialized is not waited on; anything else is the transport's (RabbitMQ.Client's
    // connection errors are not MassTransit's, so they are not listed one by one).
    private static bool CannotBeSent(Exception e) => e is ArgumentException or NotSupportedException or System.Text.Json.JsonException or System.Runtime.Serialization.SerializationException;
}
