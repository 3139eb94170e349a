using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Pipeline.Hosting;

/// <summary>
/// One service of the pipeline. The CLI hosts all modules in one process (<c>pipeline run</c>) or one module per
/// process (<c>pipeline serve &lt;stage&gt;</c>); the module does not know which.
/// </summary>
public interface IStageModule
{
    /// <summary>Lower-case stage name, also the configuration key under Pipeline:Stages.</summary>
    string Name { get; }

    void AddServices(IServiceCollection services, IConfiguration configuration);

    void AddConsumers(IBusRegistrationConfigurator bus, StageLimits limits);
}
