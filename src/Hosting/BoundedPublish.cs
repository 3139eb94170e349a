using MassTransit;

namespace Pipeline.Hosting;

/// <summary>
/// Publishing with each attempt bounded in time. RabbitMQ.Client 7.x can leave a publish that was in flight when the
/// broker restarted waiting for its publisher confirm forever, although the connection recovers and later publishes
/// go through (rabbitmq/rabbitmq-dotnet-client#1930, open for 7.2.2, which MassTransit 8.5 uses). A crawl or a
/// consumer stuck there never moves again; here the attempt is given up and the message published once more, so a
/// restart costs at worst a repeated announcement, which every consumer already takes as a no-op.
/// </summary>
public static class BoundedPublish
{
    /// <summary>How long one attempt may take: a publish normally completes in milliseconds.</summary>
    public static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(20);

    /// <summary>Attempts before giving up with an error naming the message (about 3 minutes of a broker that takes nothing).</summary>
    public const int Attempts = 10;

    public static async Task PublishBounded<T>(this IPublishEndpoint endpoint, T message, CancellationToken ct = default) where T : class
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await endpoint.Publish(message, ct).WaitAsync(AttemptTimeout, ct);
                return;
            }
            catch (TimeoutException) when (attempt < Attempts)
            {
                // The abandoned attempt may still complete; the message then arrives twice, which consumers tolerate.
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"publishing {typeof(T).Name}: the broker confirmed none of {Attempts} attempts of {AttemptTimeout.TotalSeconds:0} s each", e);
            }
        }
    }
}
