using System.ComponentModel.DataAnnotations;
using Pipeline.Runtime;

namespace Pipeline.Alignment;

/// <summary>Settings of an SFT, DPO or reward-model job (LoRA when <see cref="LoraRank"/> is above 0, else full fine-tuning).</summary>
public sealed record AlignmentConfig
{
    /// <summary>
    /// "sft", "dpo", "reward" (a reward model: the base with a score head, Bradley–Terry on preference pairs) or
    /// "grpo" (group-relative policy optimization against a reward model or a verifiable rule) or "ppo" (PPO with a
    /// value head, GAE and a KL penalty in the reward).
    /// </summary>
    public string Method { get; init; } = "sft";

    /// <summary>The methods an alignment job runs.</summary>
    public static readonly IReadOnlyList<string> Methods = ["sft", "dpo", "reward", "grpo", "ppo"];
    [Range(1, int.MaxValue)]
    public int Steps { get; init; } = 100;
    [Range(1, int.MaxValue)]
    public int BatchSize { get; init; } = 8;
    /// <summary>Unset: 1e-6 for DPO and GRPO and 3e-6 for PPO (TRL's defaults) and 1e-4 for SFT and reward models (LoRA-sized; TRL's 2e-5 is for full fine-tuning of large models).</summary>
    [Range(double.Epsilon, double.MaxValue)]
    public double? LearningRate { get; init; }
    /// <summary>Linear warm-up steps, then linear decay to 0 at <see cref="Steps"/> (TRL's default "linear" schedule).</summary>
    [Range(0, int.MaxValue)]
    public int WarmupSteps { get; init; }
    /// <summary>Gradient clipping by global norm (TRL's max_grad_norm default, 1.0); 0 = off.</summary>
    [Range(0.0, double.MaxValue)]
    public double GradClip { get; init; } = 1.0;
    [Range(0.0, double.MaxValue)]
    public double WeightDecay { get; init; }
    public double Beta { get; init; } = 0.1;
    [Range(0, 4096)]
    public int LoraRank { get; init; }
    public double LoraAlpha { get; init; } = 16;
    [Range(0.0, 0.99)]
    public double LoraDropout { get; init; }
    public List<string> LoraTargets { get; init; } = ["attn", "mlp"];
    /// <summary>SFT: pack short examples into full rows (attention kept within each example) instead of padding each.</summary>
    public bool Packing { get; init; } = true;
    /// <summary>Examples longer than the context: "truncate" (keep the start, counted) or "drop" (counted).</summary>
    public TooLongExamples TooLong { get; init; } = TooLongExamples.Truncate;
    public long Seed { get; init; } = 1;
    /// <summary>Reward models: the share of pairs held out (seeded) to report accuracy and margin on; none below 10 pairs.</summary>
    [Range(0.0, 0.9)]
    public double EvalFraction { get; init; } = 0.1;
    /// <summary>GRPO: completions sampled per prompt, the group its advantages are relative to (TRL's num_generations is 8).</summary>
    [Range(2, 1024)]
    public int Generations { get; init; } = 4;
    /// <summary>GRPO: the longest completion in tokens (TRL's max_completion_length is 256; the sample models' context is 256).</summary>
    [Range(1, int.MaxValue)]
    public int MaxNewTokens { get; init; } = 32;
    /// <summary>GRPO: sampling temperature of the rollouts (TRL's 1.0); no top-k or top-p, so the ratios are of the policy itself.</summary>
    [Range(0.01, 100.0)]
    public double Temperature { get; init; } = 1.0;
    /// <summary>GRPO: the policy ratio's clip range ε (TRL's 0.2).</summary>
    [Range(0.0, 10.0)]
    public double Clip { get; init; } = 0.2;
    /// <summary>
    /// The KL penalty towards the starting model: GRPO's β on k3 in the loss (DeepSeekMath's 0.04), PPO's coefficient
    /// on k1 in the per-token reward (TRL's kl_coef 0.05). Unset: the method's.
    /// </summary>
    [Range(0.0, double.MaxValue)]
    public double? KlCoefficient { get; init; }
    public double EffectiveKlCoefficient => KlCoefficient ?? (Method == "ppo" ? 0.05 : 0.04);
    /// <summary>
    /// PPO: the KL (per completion, summed over its tokens) the coefficient is steered towards, as Ziegler et al. and
    /// TRL's AdaptiveKLController do (TRL's target was 6); unset: the coefficient stays fixed (TRL's PPOTrainer now).
    /// </summary>
    [Range(0.0, double.MaxValue)]
    public double? KlTarget { get; init; }
    /// <summary>PPO with <see cref="KlTarget"/>: the controller's horizon in completions (TRL's 10000); a smaller one steers faster.</summary>
    [Range(1, int.MaxValue)]
    public int KlHorizon { get; init; } = 10_000;
    /// <summary>PPO: optimization passes over each batch of rollouts (TRL's num_ppo_epochs 4); one step of the job is one pass.</summary>
    [Range(1, 64)]
    public int PpoEpochs { get; init; } = 4;
    /// <summary>PPO: the value loss's weight (TRL's vf_coef 0.1) and its clip range (cliprange_value 0.2).</summary>
    [Range(0.0, double.MaxValue)]
    public double ValueCoefficient { get; init; } = 0.1;
    [Range(0.0, 10.0)]
    public double ValueClip { get; init; } = 0.2;
    /// <summary>PPO: GAE's discount γ (TRL's 1.0) and λ (0.95).</summary>
    [Range(0.0, 1.0)]
    public double Gamma { get; init; } = 1.0;
    [Range(0.0, 1.0)]
    public double Lambda { get; init; } = 0.95;
    /// <summary>PPO: subtracted from the score of a completion that never ended its turn (TRL's missing_eos_penalty; unset: none).</summary>
    [Range(0.0, double.MaxValue)]
    public double? MissingEosPenalty { get; init; }
    /// <summary>GRPO: the reward model's checkpoint (a path, or a URI under the data root by message); or set <see cref="Verifier"/>.</summary>
    public string? RewardModel { get; init; }
    /// <summary>GRPO: a verifiable reward instead of a model: "exact_match" or "char_f1" of the completion against the prompt's answer.</summary>
    [RegularExpression("exact_match|char_f1", ErrorMessage = "Verifier is 'exact_match' or 'char_f1'")]
    public string? Verifier { get; init; }
    /// <summary>Reward models: TRL's center_rewards_coefficient (0: off; TRL suggests 0.01), which keeps rewards near zero.</summary>
    [Range(0.0, double.MaxValue)]
    public double CenterRewards { get; init; }
    /// <summary>Save the job's state (weights, optimizer, step) every this many steps, so a stopped job continues from there.</summary>
    [Range(1, int.MaxValue)]
    public int SaveEvery { get; init; } = 50;
    /// <summary>Log loss (and for DPO reward margin and accuracy) every this many steps.</summary>
    [Range(1, int.MaxValue)]
    public int LogEvery { get; init; } = 10;

    /// <summary>
    /// A config from JSON (a config file or a message), property names in any case; unset ones keep their defaults;
    /// unknown names and nonsense values are errors naming them.
    /// </summary>
    /// <summary>The learning rate this job uses: the configured one, or the method's default.</summary>
    public double EffectiveLearningRate => LearningRate ?? (Method is "dpo" or "grpo" ? 1e-6 : Method == "ppo" ? 3e-6 : 1e-4);

    public static AlignmentConfig FromJson(string json, string source = "alignment config") =>
        string.IsNullOrWhiteSpace(json) ? new AlignmentConfig() : StrictConfig.FromJson<AlignmentConfig>(json, source);
}

/// <summary>What an alignment job does with examples longer than the model's context ("truncate" or "drop" in JSON).</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(Pipeline.Contracts.NamedEnumConverter<TooLongExamples>))]
public enum TooLongExamples
{
    Truncate,
    Drop,
}

/// <summary>
/// What a job did: per-step loss (and for DPO reward margin and accuracy), examples truncated or dropped, and the
/// examples used with the rows they were packed into (equal without packing).
/// </summary>
public sealed record AlignmentReport(List<(int Step, double Loss, double Margin, double Accuracy)> Steps, int Truncated, int Dropped, int Examples, int Rows)
{
    /// <summary>Examples dropped because truncation left them no trained token (they would give a 0/0 loss).</summary>
    public int Untrainable { get; init; }
    /// <summary>Steps whose loss or gradient was not finite: the update was skipped.</summary>
    public int SkippedSteps { get; init; }
    /// <summary>Each step's figures beside its loss (GRPO: reward, kl, completion length, clip fraction, seconds generating).</summary>
    public List<IReadOnlyDictionary<string, double>> StepFigures { get; init; } = [];
    /// <summary>A reward model's held-out pairs: how often it preferred the chosen reply, and the mean margin (null: none held out).</summary>
    public HeldOutRewards? HeldOut { get; init; }
}

/// <summary>One step of an alignment job as it is taken: its loss, DPO's and reward models' margin and accuracy, and every figure the objective reported (RL's reward, KL, ...).</summary>
public sealed record AlignmentStep(int Step, double Loss, double Margin, double Accuracy, IReadOnlyDictionary<string, double> Figures);

/// <summary>A reward model on pairs it was not trained on: their number, the share scored chosen above rejected, the mean reward margin.</summary>
public sealed record HeldOutRewards(int Pairs, double Accuracy, double Margin);
