using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pipeline.Model.Tests;

/// <summary>The update pretraining, SFT and DPO share: clipping by global norm, non-finite steps skipped, five in a row an error.</summary>
public sealed class GuardedUpdateTests
{
    private static (Parameter Weights, AdamW Optimizer) Setup()
    {
        var weights = new Parameter(tensor(new float[] { 1f, 1f }));
        return (weights, optim.AdamW([weights], lr: 0.1));
    }

    /// <summary>A loss whose gradient is (3, 4): norm 5.</summary>
    private static Tensor Loss(Parameter weights, float scale = 1f) => (weights * tensor(new[] { 3f * scale, 4f * scale })).sum();

    [Theory]
    [InlineData(1.0, 1.0)]   // clipped to norm 1
    [InlineData(0.0, 5.0)]   // regression: a limit of 0 (no clipping) zeroed every gradient in pretraining
    public void Gradients_are_clipped_by_global_norm_and_a_limit_of_0_leaves_them(double clip, double normAfter)
    {
        var (weights, optimizer) = Setup();
        var loss = Loss(weights);
        loss.backward();
        var update = new GuardedUpdate([weights], optimizer, clip, "test");
        Assert.True(update.Apply(loss.item<float>(), 1));
        Assert.Equal(5.0, update.GradNorm, 4);
        Assert.Equal(normAfter, weights.grad!.norm().item<float>(), 4);
        Assert.NotEqual(1f, weights[0].item<float>());
    }

    [Fact]
    public void Non_finite_steps_are_skipped_and_five_in_a_row_are_an_error()
    {
        var (weights, optimizer) = Setup();
        var update = new GuardedUpdate([weights], optimizer, 1.0, "training t");
        for (var step = 1; step <= 4; step++)
        {
            optimizer.zero_grad();
            Loss(weights, float.NaN).backward();
            Assert.False(update.Apply(double.NaN, step));
        }
        Assert.Equal([1f, 1f], weights.data<float>().ToArray()); // nothing written into the weights
        Assert.Equal(4, update.Skipped);
        optimizer.zero_grad();
        var loss = Loss(weights);
        loss.backward();
        Assert.True(update.Apply(loss.item<float>(), 5)); // a good step resets the count
        for (var step = 6; step <= 9; step++) Assert.False(update.Apply(double.PositiveInfinity, step));
        var error = Assert.Throws<InvalidOperationException>(() => update.Apply(double.NaN, 10));
        Assert.Equal("training t diverged: non-finite loss or gradient five steps in a row (at step 10)", error.Message);
    }
}
