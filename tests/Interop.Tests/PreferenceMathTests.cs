using System.Text.Json;
using Pipeline.Alignment;
using static TorchSharp.torch;

namespace Pipeline.Interop.Tests;

/// <summary>
/// Reward modelling's and RL's losses and estimates (<see cref="PreferenceMath"/>) against the same definitions written
/// out in numpy (tests/interop/preference_math.py, after TRL's trainers and DeepSeekMath), on the same fixed tensors.
/// </summary>
public sealed class PreferenceMathTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("preference-").FullName;

    public void Dispose() => Directory.Delete(_root, true);

    [Fact]
    public void Bradley_Terry_GAE_PPO_KL_and_GRPO_equal_their_definitions_in_numpy()
    {
        manual_seed(17);
        const int batch = 4, tokens = 6;
        var mask = tensor(new float[,] { { 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 0, 0, 0 }, { 1, 1, 1, 1, 1, 0 }, { 1, 0, 0, 0, 0, 0 } });
        Tensor R(params long[] shape) => randn(shape);
        var (chosen, rejected, margin) = (R(8), R(8), rand(8));
        var (logp, oldLogp, refLogp) = (R(batch, tokens) * 0.3 - 2, R(batch, tokens) * 0.3 - 2, R(batch, tokens) * 0.3 - 2);
        var (values, vpred, scores, groupRewards) = (R(batch, tokens), R(batch, tokens), R(batch), R(batch));
        var parameters = new { centering = 0.01, kl_coef = 0.05, gamma = 0.99, lam = 0.95, clip = 0.2, clip_value = 0.2, beta = 0.04, group = 2,
            kl_target = 6.0, kl_horizon = 100, kl_updates = new[] { new[] { 9.0, 8 }, new[] { 6.3, 8 }, new[] { 1.0, 16 } } };

        static object L(Tensor t) => t.dim() == 1 ? t.data<float>().ToArray() : Enumerable.Range(0, (int)t.shape[0]).Select(i => t[i].data<float>().ToArray()).ToArray();
        var input = Path.Combine(_root, "input.json");
        var output = Path.Combine(_root, "output.json");
        File.WriteAllText(input, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["chosen"] = L(chosen), ["rejected"] = L(rejected), ["margin"] = L(margin), ["mask"] = L(mask),
            ["logp"] = L(logp), ["old_logp"] = L(oldLogp), ["ref_logp"] = L(refLogp), ["values"] = L(values), ["vpred"] = L(vpred),
            ["scores"] = L(scores), ["group_rewards"] = L(groupRewards), ["params"] = parameters,
        }));
        Ecosystem.Python("preference_math.py", input, output);
        var reference = JsonDocument.Parse(File.ReadAllText(output)).RootElement;
        double Scalar(string name) => reference.GetProperty(name).GetDouble();
        void Same(string name, Tensor ours)
        {
            var expected = reference.GetProperty(name);
            var flat = expected.ValueKind == JsonValueKind.Array && expected[0].ValueKind == JsonValueKind.Array
                ? expected.EnumerateArray().SelectMany(r => r.EnumerateArray().Select(v => v.GetDouble())).ToArray()
                : expected.EnumerateArray().Select(v => v.GetDouble()).ToArray();
            var actual = ours.to(ScalarType.Float64).flatten().data<double>().ToArray();
            Assert.Equal(flat.Length, actual.Length);
            var worst = flat.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
            Assert.True(worst < 1e-4, $"{name}: largest difference {worst}");
        }

        Assert.Equal(Scalar("bt"), PreferenceMath.BradleyTerryLoss(chosen, rejected, margin, parameters.centering).item<float>(), 4);
        var rewards = PreferenceMath.PpoRewards(scores, oldLogp, refLogp, mask, parameters.kl_coef);
        Same("ppo_rewards", rewards);
        var (advantages, returns) = PreferenceMath.Gae(rewards, values * mask, mask, parameters.gamma, parameters.lam);
        Same("advantages", advantages);
        Same("returns", returns);
        var whitened = PreferenceMath.Whiten(advantages, mask);
        Same("whitened", whitened);
        var (policyLoss, clipFraction) = PreferenceMath.PpoPolicyLoss(logp, oldLogp, whitened, mask, parameters.clip);
        Assert.Equal(Scalar("pg_loss"), policyLoss.item<float>(), 4);
        Assert.Equal(Scalar("clipfrac"), clipFraction.item<float>(), 4);
        Assert.InRange(clipFraction.item<float>(), 0.01, 0.99); // the fixture clips some tokens and not others
        Assert.Equal(Scalar("vf_loss"), PreferenceMath.PpoValueLoss(vpred, values, returns, mask, parameters.clip_value).item<float>(), 4);
        Same("k3", PreferenceMath.KlK3(logp, refLogp));
        var groupAdvantages = PreferenceMath.GrpoAdvantages(groupRewards, parameters.group);
        Same("grpo_advantages", groupAdvantages);
        Assert.Equal(Scalar("grpo_loss"), PreferenceMath.GrpoLoss(logp, oldLogp, refLogp, groupAdvantages, mask, parameters.clip, parameters.beta).item<float>(), 4);
        // The adaptive KL coefficient over three batches: above the target (clipped at +20 %), just above, far below.
        var coefficient = parameters.kl_coef;
        var adaptive = reference.GetProperty("adaptive_kl").EnumerateArray().Select(v => v.GetDouble()).ToList();
        foreach (var (update, expected) in parameters.kl_updates.Zip(adaptive))
        {
            coefficient = PreferenceMath.AdaptiveKlCoefficient(coefficient, update[0], parameters.kl_target, (int)update[1], parameters.kl_horizon);
            Assert.Equal(expected, coefficient, 12);
        }
        Assert.True(adaptive[0] > parameters.kl_coef && adaptive[2] < adaptive[1], string.Join(", ", adaptive));
    }
}
