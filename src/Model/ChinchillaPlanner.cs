using Pipeline.Contracts.Checkpoints;


namespace Pipeline.Model;

/// <summary>
/// Compute-optimal model size for a FLOP budget (Hoffmann et al. 2022): with C = 6·N·D and D ≈ 20·N tokens,
/// N = sqrt(C / 120). The shape is picked from a GPT family (head size 64, about 64 width per layer, as the GPT-2 and
/// Chinchilla tables scale) as the one whose parameter count is closest to N; the token budget then follows from
/// C / (6·N_actual), so the FLOPs spent match the budget.
/// </summary>
public static class ChinchillaPlanner
{
    public const double TokensPerParameter = 20;

    public static (GptConfig Model, long Tokens) Plan(double flops, GptConfig template)
    {
        if (flops <= 0) throw new ArgumentException("the compute budget must be positive");
        var target = Math.Sqrt(flops / (6 * TokensPerParameter));
        GptConfig? best = null;
        foreach (var layers in Enumerable.Range(1, 48))
        {
            foreach (var width in Enumerable.Range(1, 64).Select(k => k * 64))
            {
                if (width / layers is < 32 or > 256) continue; // keep the usual depth-to-width ratios
                var candidate = template with { Layers = layers, Width = width, Heads = Math.Max(1, width / 64) };
                if (best is null || Math.Abs(Math.Log(candidate.Parameters() / target)) < Math.Abs(Math.Log(best.Parameters() / target)))
                    best = candidate;
            }
        }
        var tokens = (long)(flops / (6.0 * best!.Parameters()));
        return (best, tokens);
    }
}
