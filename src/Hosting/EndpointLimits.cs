using MassTransit;

namespace Pipeline.Hosting;

public static class EndpointLimits
{
    /// <summary>Applies a stage's configured concurrency and prefetch to its receive endpoint.</summary>
    public static void Apply(this IEndpointRegistrationConfigurator endpoint, StageLimits limits)
    {
        endpoint.ConcurrentMessageLimit = limits.ConcurrentMessageLimit;
        endpoint.PrefetchCount = limits.PrefetchCount;
    }
}
