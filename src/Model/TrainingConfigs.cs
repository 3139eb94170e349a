using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Model;

/// <summary>What a training configuration (a schema in Contracts) means for a run: its budgets and its precision.</summary>
public static class TrainingConfigs
{
    /// <summary>The configuration with budgets resolved: compute budget to model and steps, token budget to steps.</summary>
    public static TrainingConfig Resolved(this TrainingConfig source)
    {
        var config = source;
        if (source.ComputeBudgetFlops > 0)
        {
            var (model, tokens) = ChinchillaPlanner.Plan(source.ComputeBudgetFlops, source.Model);
            config = config with { Model = model, MaxTokens = tokens };
        }
        if (config.MaxTokens > 0)
        {
            var perStep = (long)config.BatchSize * config.Model.Context * config.AccumulationSteps;
            config = config with { MaxSteps = (int)Math.Max(1, (config.MaxTokens + perStep - 1) / perStep) };
        }
        return config;
    }

    /// <summary>The precision this run computes in on <paramref name="device"/> (fp32 or bf16).</summary>
    public static Precision PrecisionOn(this TrainingConfig config, TorchSharp.torch.Device device) =>
        config.Precision != Precision.Auto ? config.Precision : device.type == TorchSharp.DeviceType.CUDA ? Precision.Bf16 : Precision.Fp32;
}
