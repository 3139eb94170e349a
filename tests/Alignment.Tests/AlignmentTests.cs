using Pipeline.Model;
using Pipeline.Bpe;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Alignment.Tests;

public sealed class AlignmentTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("align-").FullName;

    private static Gpt Model(int seed = 1)
    {
        manual_seed(seed);
        return new Gpt(new GptConfig { VocabSize = 48, Layers = 2, Heads = 2, Width = 16, Context = 24 });
    }

    private static readonly long[] Ids = [1, 5, 9, 3, 7, 2, 8, 4, 6, 10];

    [Fact]
    public void Masked_positions_contribute_no_gradient()
    {
        var model = Model();
        // The first five targets are the prompt (masked); whatever they are, the gradient is the same.
        Tensor Gradient(long[] maskedTargets)
        {
            model.zero_grad();
            var labels = Ids[1..].ToArray();
            for (var i = 0; i < 5; i++) labels[i] = SequenceScoring.Ignore;
            var loss = model.Loss(tensor(Ids[..^1], [1, 9]), tensor(labels, [1, 9]), SequenceScoring.Ignore);
            loss.backward();
            return model.parameters().First().grad!.clone();
        }
        var a = Gradient([]);
        var b = Gradient([1, 2, 3]);
        Assert.True(a.allclose(b));
        Assert.True(a.abs().sum().item<float>() > 0);

        // And the loss equals the mean cross-entropy over the unmasked positions only.
        var x = tensor(Ids[..^1], [1, 9]);
        var labels = Ids[1..].ToArray();
        for (var i = 0; i < 5; i++) labels[i] = SequenceScoring.Ignore;
        var masked = model.Loss(x, tensor(labels, [1, 9]), SequenceScoring.Ignore).item<float>();
        var logProbs = model.forward(x)[0].log_softmax(-1);
        var manual = -Enumerable.Range(5, 4).Average(t => logProbs[t, Ids[t + 1]].item<float>());
        Assert.Equal(manual, masked, 4);
    }

    [Fact]
    public void Lora_with_zero_b_leaves_the_output_unchanged_and_merging_keeps_the_logits()
    {
        var model = Model();
        var x = tensor(Ids, [1, Ids.Length]);
        model.eval();
        var before = model.forward(x).detach().clone();
        model.AddLora(rank: 4, alpha: 8, dropout: 0, ["attn", "mlp"]);
        Assert.True(model.forward(x).allclose(before));
        var trainable = model.parameters().Where(p => p.requires_grad).ToList();
        Assert.All(model.named_parameters().Where(p => p.parameter.requires_grad), p => Assert.Contains("lora_", p.name));
        Assert.Equal(2 * (2 + 3) * 2, trainable.Count); // (qkv, proj, up, gate, down) x (A, B) x 2 layers

        // A few steps move B away from zero; the merged model then gives the adapted model's logits.
        var optimizer = optim.AdamW(trainable, lr: 1e-2);
        for (var i = 0; i < 5; i++)
        {
            optimizer.zero_grad();
            model.Loss(tensor(Ids[..^1], [1, 9]), tensor(Ids[1..], [1, 9])).backward();
            optimizer.step();
        }
        model.eval();
        var adapted = model.forward(x);
        Assert.False(adapted.allclose(before, rtol: 1e-3, atol: 1e-4));
        var merged = model.Merged();
        merged.eval();
        Assert.True(merged.forward(x).allclose(adapted, rtol: 1e-4, atol: 1e-5));
        Assert.DoesNotContain(merged.state_dict().Keys, k => k.Contains("lora_"));
    }

    [Fact]
    public void Dpo_loss_is_log_2_when_policy_equals_reference()
    {
        var chosen = tensor(new[] { -12.5f, -3.0f });
        var rejected = tensor(new[] { -10.0f, -7.5f });
        Assert.Equal(Math.Log(2), Dpo.Loss(chosen, rejected, chosen, rejected).item<float>(), 5);
        var (margin, accuracy) = Dpo.Rewards(chosen + 1, rejected, chosen, rejected);
        Assert.Equal(0.1, margin, 5);
        Assert.Equal(1.0, accuracy, 5);
    }

    [Fact]
    public void A_few_dpo_steps_prefer_the_chosen_replies()
    {
        var model = Model(2);
        var random = new Random(4);
        // Toy preferences: after any prompt, replies made of even tokens are chosen, odd ones rejected.
        var pairs = Enumerable.Range(0, 24).Select(_ =>
        {
            var prompt = Enumerable.Range(0, 4).Select(_ => random.Next(40)).ToList();
            var chosen = Enumerable.Range(0, 4).Select(_ => 2 * random.Next(20)).ToList();
            var rejected = Enumerable.Range(0, 4).Select(_ => 2 * random.Next(20) + 1).ToList();
            return (prompt, chosen, rejected);
        }).ToList();
        var report = AlignmentTrainer.Dpo(model, pairs, new AlignmentConfig { Method = "dpo", Steps = 30, BatchSize = 8, LearningRate = 3e-3, Beta = 0.5 }, padId: 47);
        Assert.True(report.Steps[0].Loss > 0.6 && report.Steps[0].Loss < 0.8, $"first loss {report.Steps[0].Loss}"); // about log 2
        var last = report.Steps.TakeLast(5).ToList();
        Assert.True(last.Average(s => s.Accuracy) > 0.8, $"accuracy {last.Average(s => s.Accuracy)}");
        Assert.True(last.Average(s => s.Margin) > 0);
    }

    /// <summary>
    /// Pairs whose chosen reply counts up one token at a time (a "fluent" sequence) and whose rejected reply holds the
    /// same tokens shuffled; with <paramref name="scrambleLabels"/> chosen and rejected are swapped at random, so
    /// there is no signal to learn.
    /// </summary>
    private static List<(List<int> Prompt, List<int> Chosen, List<int> Rejected)> OrderPairs(int count, int seed, bool scrambleLabels = false)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var start = random.Next(2, 30);
            var fluent = Enumerable.Range(start, random.Next(6, 10)).ToList();
            var shuffled = fluent.OrderBy(_ => random.Next()).ToList();
            if (shuffled.SequenceEqual(fluent)) (shuffled[0], shuffled[1]) = (shuffled[1], shuffled[0]);
            var prompt = new List<int> { 1, random.Next(40, 46) };
            return scrambleLabels && random.Next(2) == 0 ? (prompt, shuffled, fluent) : (prompt, fluent, shuffled);
        }).ToList();
    }

    [Fact]
    public void A_reward_model_scores_fluent_replies_above_shuffled_ones_on_pairs_it_never_saw()
    {
        var config = new AlignmentConfig { Method = "reward", Steps = 150, BatchSize = 16, LearningRate = 3e-3, WarmupSteps = 10, EvalFraction = 0.2 };
        var model = Model(6).WithScoreHead();
        var report = AlignmentTrainer.Reward(model, OrderPairs(400, 1), config, padId: 47);
        Assert.Equal(80, report.HeldOut!.Pairs);
        Assert.True(report.HeldOut.Accuracy >= 0.9, $"held-out accuracy {report.HeldOut.Accuracy:P1}");
        Assert.True(report.HeldOut.Margin > 0);
        Assert.True(report.Steps[0].Loss is > 0.6 and < 0.8, $"first loss {report.Steps[0].Loss}"); // about log 2: the head starts near 0

        // Without the signal (labels swapped at random) the same training learns nothing that holds out.
        var control = AlignmentTrainer.Reward(Model(6).WithScoreHead(), OrderPairs(400, 1, scrambleLabels: true), config, padId: 47);
        Assert.True(control.HeldOut!.Accuracy < 0.75, $"held-out accuracy without signal {control.HeldOut.Accuracy:P1}");
    }

    /// <summary>A verifiable toy reward: the share of a completion's tokens that are even.</summary>
    private static float EvenShare(List<int> completion) => completion.Count == 0 ? 0 : completion.Count(t => t % 2 == 0) / (float)completion.Count;

    private static double MeanReward(Gpt model, IReadOnlyList<List<int>> prompts) =>
        TextGenerator.GenerateBatch(model, prompts.SelectMany(p => Enumerable.Repeat((IReadOnlyList<int>)p, 4)).ToList(),
            new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MaxNewTokens = 6, Seed = 99 }).Average(EvenShare);

    [Fact]
    public void Grpo_raises_the_reward_of_held_out_prompts_and_learns_nothing_without_a_reward_signal()
    {
        var random = new Random(7);
        var prompts = Enumerable.Range(0, 40).Select(_ => new List<int> { 1, random.Next(2, 46), random.Next(2, 46) }).ToList();
        var (train, heldOut) = (prompts.Take(32).ToList(), prompts.Skip(32).ToList());
        var config = new AlignmentConfig { Method = "grpo", Steps = 100, BatchSize = 4, Generations = 4, MaxNewTokens = 6, LearningRate = 1e-2, KlCoefficient = 0.01 };
        var before = MeanReward(Model(8), heldOut);

        var policy = Model(8);
        var report = AlignmentTrainer.Grpo(policy, Model(8), train, rollouts => rollouts.Select(r => EvenShare(r.Completion)).ToArray(), config, padId: 47, new HashSet<int>());
        var after = MeanReward(policy, heldOut);
        Assert.True(after > before + 0.15, $"mean reward on held-out prompts {before:F3} -> {after:F3}");
        Assert.Equal(100, report.StepFigures.Count);
        Assert.True(report.StepFigures.TakeLast(5).Average(f => f["reward"]) > report.StepFigures.Take(5).Average(f => f["reward"]));
        Assert.True(report.StepFigures[^1]["kl"] > 0);
        Assert.All(report.StepFigures, f => Assert.InRange(f["completion_length"], 1, 6));

        // The same training with the reward removed (every completion scored alike): no advantage, so nothing moves
        // the policy towards even tokens.
        var control = Model(8);
        AlignmentTrainer.Grpo(control, Model(8), train, rollouts => rollouts.Select(_ => 0.5f).ToArray(), config, padId: 47, new HashSet<int>());
        var unchanged = MeanReward(control, heldOut);
        Assert.True(Math.Abs(unchanged - before) < 0.1, $"without a reward signal {before:F3} -> {unchanged:F3}");
    }

    [Fact]
    public void Ppo_raises_the_reward_of_held_out_prompts_within_its_KL_and_learns_nothing_without_a_reward_signal()
    {
        var random = new Random(7);
        var prompts = Enumerable.Range(0, 40).Select(_ => new List<int> { 1, random.Next(2, 46), random.Next(2, 46) }).ToList();
        var (train, heldOut) = (prompts.Take(32).ToList(), prompts.Skip(32).ToList());
        var config = new AlignmentConfig { Method = "ppo", Steps = 120, BatchSize = 16, PpoEpochs = 4, MaxNewTokens = 6, LearningRate = 3e-3, KlCoefficient = 0.01 };
        var before = MeanReward(Model(8), heldOut);

        var policy = Model(8).WithScoreHead();
        var report = AlignmentTrainer.Ppo(policy, Model(8), train, rollouts => rollouts.Select(r => EvenShare(r.Completion)).ToArray(), config, padId: 47,
            new HashSet<int>(), endOfTurn: 46);
        var after = MeanReward(policy, heldOut);
        Assert.True(after > before + 0.15, $"mean reward on held-out prompts {before:F3} -> {after:F3}");
        Assert.True(report.StepFigures.TakeLast(8).Average(f => f["reward"]) > report.StepFigures.Take(8).Average(f => f["reward"]));
        Assert.All(report.StepFigures, f => Assert.True(double.IsFinite(f["value_loss"]) && f["entropy"] > 0));
        Assert.Contains(report.StepFigures, f => f["clip_fraction"] > 0); // later epochs on a batch move the ratio off 1
        Assert.True(report.StepFigures[^1]["kl"] > 0);

        var control = Model(8).WithScoreHead();
        AlignmentTrainer.Ppo(control, Model(8), train, rollouts => rollouts.Select(_ => 0.5f).ToArray(), config, padId: 47, new HashSet<int>(), endOfTurn: 46);
        var unchanged = MeanReward(control, heldOut);
        Assert.True(Math.Abs(unchanged - before) < 0.1, $"without a reward signal {before:F3} -> {unchanged:F3}");
    }

    [Theory]
    [InlineData("sft")]
    [InlineData("dpo")]
    [InlineData("reward")]
    [InlineData("grpo")]
    [InlineData("ppo")]
    public void A_job_stopped_mid_way_resumes_and_ends_with_the_losses_and_weights_of_one_never_stopped(string method)
    {
        var examples = Enumerable.Range(0, 16).Select(i => (Ids: new List<int> { 1, 2, 3 + i % 4, 20, 21, 22 + i % 3 }, Trained: new List<bool> { false, false, false, true, true, true })).ToList();
        var pairs = Enumerable.Range(0, 12).Select(i => (Prompt: new List<int> { 1, 2, 3 + i % 4 }, Chosen: new List<int> { 20, 21 }, Rejected: new List<int> { 30 + i % 5, 31 })).ToList();
        var prompts = Enumerable.Range(0, 12).Select(i => new List<int> { 1, 2, 3 + i % 7 }).ToList();
        // RL: rollouts are sampled with a seed per step and prompts drawn from the job's seeded generator; PPO stops on a
        // rollout batch's boundary (4 epochs: step 8) and steers its KL coefficient, which must come back with the state.
        var config = new AlignmentConfig
        {
            Method = method, Steps = 20, BatchSize = 4, LearningRate = 1e-2, WarmupSteps = 3, LoraRank = 4, SaveEvery = 5, Beta = 0.5,
            Generations = 2, MaxNewTokens = 4, PpoEpochs = 4, KlTarget = method == "ppo" ? 0.01 : null, KlHorizon = 16,
        };
        RolloutReward even = rollouts => rollouts.Select(r => EvenShare(r.Completion)).ToArray();
        AlignmentReport Train(Gpt model, AlignmentResume? resume, CancellationToken ct, Action<AlignmentStep>? onStep = null) => method switch
        {
            "sft" => AlignmentTrainer.Sft(model, examples, config, 47, onStep, ct, resume),
            "dpo" => AlignmentTrainer.Dpo(model, pairs, config, 47, onStep, ct, resume),
            "grpo" => AlignmentTrainer.Grpo(model, Model(5), prompts, even, config, 47, new HashSet<int>(), onStep, ct, resume),
            "ppo" => AlignmentTrainer.Ppo(model, Model(5), prompts, even, config, 47, new HashSet<int>(), 46, onStep, ct, resume),
            _ => AlignmentTrainer.Reward(model, pairs, config, 47, onStep, ct, resume),
        };
        Gpt Fresh() => method is "reward" or "ppo" ? Model(5).WithScoreHead() : Model(5);

        var whole = Fresh();
        var uninterrupted = Train(whole, null, default);

        // Stopped after step 8 (a signal): the state of step 8 is saved; a new job on a fresh copy of the base goes on.
        var folder = Path.Combine(_root, method);
        using var stop = new CancellationTokenSource();
        var first = Train(Fresh(), new AlignmentResume(folder, "same job", config.SaveEvery), stop.Token, s => { if (s.Step == 8) stop.Cancel(); });
        Assert.Equal(8, first.Steps[^1].Step);
        var resumedModel = Fresh();
        var resumed = Train(resumedModel, new AlignmentResume(folder, "same job", config.SaveEvery), default);
        Assert.Equal(Enumerable.Range(9, 12), resumed.Steps.Select(s => s.Step));
        Assert.Equal(uninterrupted.Steps.Skip(8).Select(s => Math.Round(s.Loss, 5)), resumed.Steps.Select(s => Math.Round(s.Loss, 5)));
        if (method == "ppo")
        {
            // The coefficient moved before the stop, and the resumed job went on from where it was.
            Assert.NotEqual(config.EffectiveKlCoefficient, uninterrupted.StepFigures[8]["kl_coefficient"]);
            Assert.Equal(uninterrupted.StepFigures.Skip(8).Select(f => f["kl_coefficient"]), resumed.StepFigures.Select(f => f["kl_coefficient"]));
        }
        var expected = whole.state_dict();
        foreach (var (name, value) in resumedModel.state_dict())
            Assert.True(value.allclose(expected[name], rtol: 1e-5, atol: 1e-6), name);

        // A state saved by another job (other data, base or config) is not used.
        var other = Train(Fresh(), new AlignmentResume(folder, "another job", config.SaveEvery), default);
        Assert.Equal(1, other.Steps[0].Step);
    }

    [Fact]
    public void Sft_learns_replies_and_counts_what_did_not_fit()
    {
        var model = Model(3);
        var examples = Enumerable.Range(0, 16).Select(i => (Ids: new List<int> { 1, 2, 3 + i % 4, 20, 21, 22 }, Trained: new List<bool> { false, false, false, true, true, true })).ToList();
        examples.Add((Enumerable.Range(0, 40).Select(i => i % 40).ToList(), Enumerable.Range(0, 40).Select(i => i > 10).ToList()));
        var report = AlignmentTrainer.Sft(model, examples, new AlignmentConfig { Steps = 40, BatchSize = 8, LearningRate = 1e-2 }, padId: 47);
        Assert.Equal(1, report.Truncated);
        Assert.True(report.Steps[^1].Loss < report.Steps[0].Loss / 2, $"{report.Steps[0].Loss} -> {report.Steps[^1].Loss}");
        var dropped = AlignmentTrainer.Sft(Model(3), examples, AlignmentConfig.FromJson("""{ "Steps": 1, "TooLong": "drop" }"""), padId: 47);
        Assert.Equal(1, dropped.Dropped);
        // Regression: TooLong was compared with "drop", so a misspelt value silently truncated.
        var error = Assert.Throws<ArgumentException>(() => AlignmentConfig.FromJson("""{ "TooLong": "dorp" }"""));
        Assert.Contains("'dorp' is not truncate or drop", error.Message);
    }

    [Fact]
    public void Examples_truncated_to_no_trained_token_are_dropped_and_counted_and_the_weights_stay_finite()
    {
        // Regression: in "truncate" mode an example whose reply was cut off entirely was kept; packed, it filled rows
        // with no labels, and a batch of them gave a 0/0 = NaN loss that went into the weights.
        var model = Model(4);
        var longPrompt = (Ids: Enumerable.Range(0, 40).Select(i => i % 40).ToList(), Trained: Enumerable.Range(0, 40).Select(i => i >= 30).ToList());
        var good = (Ids: new List<int> { 1, 2, 3, 20, 21 }, Trained: new List<bool> { false, false, false, true, true });
        var examples = Enumerable.Repeat(longPrompt, 12).Append(good).ToList();
        var report = AlignmentTrainer.Sft(model, examples, new AlignmentConfig { Steps = 10, BatchSize = 8, LearningRate = 1e-2 }, padId: 47);
        Assert.Equal(12, report.Untrainable);
        Assert.Equal(1, report.Examples);
        Assert.All(report.Steps, s => Assert.True(double.IsFinite(s.Loss)));
        Assert.All(model.parameters(), p => Assert.True(p.isfinite().all().item<bool>()));
        var none = Assert.Throws<InvalidDataException>(() => AlignmentTrainer.Sft(Model(4), Enumerable.Repeat(longPrompt, 4).ToList(), new AlignmentConfig { Steps = 1 }, padId: 47));
        Assert.Contains("4 left without trained tokens", none.Message);
    }

    [Fact]
    public void Non_finite_steps_are_skipped_not_written_into_the_weights()
    {
        // One poisoned weight makes every loss NaN. Without the guard, the NaN gradients would reach every trainable
        // parameter through the optimizer; with it, the updates are skipped and the job stops after five.
        var model = Model(6);
        var poisoned = model.named_parameters().First(p => p.name.EndsWith("norm.weight")).parameter;
        using (no_grad()) poisoned[0] = float.NaN;
        var examples = Enumerable.Range(0, 8).Select(i => (Ids: new List<int> { 1, 2, 3 + i, 20, 21 }, Trained: new List<bool> { false, false, false, true, true })).ToList();
        var e = Assert.Throws<InvalidOperationException>(() => AlignmentTrainer.Sft(model, examples, new AlignmentConfig { Steps = 30, BatchSize = 4, LearningRate = 1e-2 }, padId: 47));
        Assert.Contains("five steps in a row", e.Message);
        Assert.All(model.named_parameters().Where(p => !ReferenceEquals(p.parameter, poisoned)), p => Assert.True(p.parameter.isfinite().all().item<bool>(), p.name));
    }

    [Fact]
    public void Dpo_follows_trl_defaults_and_truncates_the_prompt_from_the_left()
    {
        Assert.Equal(1e-6, new AlignmentConfig { Method = "dpo" }.EffectiveLearningRate);
        Assert.Equal(0, new AlignmentConfig { Method = "dpo" }.LoraDropout);
        Assert.Equal(1.0, new AlignmentConfig().GradClip);
        // A prompt longer than the context keeps its end (what leads into the reply); the pair is kept and counted.
        var model = Model(2);
        var prompt = Enumerable.Range(0, 30).Select(i => i % 40).ToList();
        var pairs = Enumerable.Range(0, 4).Select(i => (prompt, new List<int> { 41, 42 }, new List<int> { 43, 44 })).ToList();
        var report = AlignmentTrainer.Dpo(model, pairs, new AlignmentConfig { Method = "dpo", Steps = 2, BatchSize = 2 }, padId: 47);
        Assert.Equal(4, report.Truncated);
        Assert.Equal(4, report.Examples);
        Assert.All(report.Steps, s => Assert.True(double.IsFinite(s.Loss)));
    }

    [Fact]
    public void Packed_examples_give_the_same_logits_and_loss_as_each_alone()
    {
        var model = Model(5);
        model.eval();
        var examples = new[] { 9, 6, 4, 7 }.Select((n, e) => (Ids: Enumerable.Range(0, n).Select(i => 1 + (i * 7 + e * 3) % 40).ToList(),
            Trained: Enumerable.Range(0, n).Select(i => i >= n / 2).ToList())).ToList();
        var rows = SequenceScoring.PackRows(examples, context: 12);
        // Longest first, first fit: 8 positions, then 6 (new row), 5 (after the 6), 3 (after the 8).
        Assert.Equal([[0, 2], [3, 1]], rows);

        var packedRows = rows.Select(r => (IReadOnlyList<(List<int>, List<bool>)>)r.Select(i => examples[i]).ToList()).ToList();
        var (input, labels, packing) = SequenceScoring.PackedBatch(packedRows, 12, padId: 47, CPU);
        var logits = model.Forward(input, null, null, packing);
        var offset = 0;
        foreach (var i in rows[0])
        {
            var alone = model.forward(tensor(examples[i].Ids.SkipLast(1).Select(x => (long)x).ToArray(), [1, examples[i].Ids.Count - 1]));
            var packed = logits[0].narrow(0, offset, examples[i].Ids.Count - 1).unsqueeze(0);
            Assert.True(packed.allclose(alone, rtol: 1e-4, atol: 1e-5), $"example {i} differs when packed");
            offset += examples[i].Ids.Count - 1;
        }
        // Without the packing information the second example would see the first.
        Assert.False(model.forward(input)[0].narrow(0, 8, 3).allclose(logits[0].narrow(0, 8, 3), rtol: 1e-4, atol: 1e-5));

        // The packed loss is the padded batch's loss: same labelled positions, same predictions.
        var (padded, paddedLabels) = SequenceScoring.Batch(examples, 12, padId: 47, CPU);
        Assert.Equal(model.Loss(padded, paddedLabels).item<float>(), model.Loss(input, labels, packing: packing).item<float>(), 4);
    }

    [Fact]
    public async Task Parquet_sft_data_is_read_like_jsonl_and_bad_rows_are_named()
    {
        var path = Path.Combine(_root, "sft.parquet");
        await using (var stream = File.Create(path))
        {
            await Parquet.Serialization.ParquetSerializer.SerializeAsync(new[]
            {
                new ParquetSft { instruction = "日本の首都は?", output = "東京です。" },
                new ParquetSft { instruction = "no output" },
                new ParquetSft { messages = """[{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]""" },
            }, stream);
        }
        var errors = new List<string>();
        var examples = AlignmentData.ReadSft(path, errors);
        Assert.Equal(2, examples.Count);
        Assert.Equal("東京です。", examples[0].Messages[1].Content);
        Assert.Equal("2", examples[1].Messages[1].Content);
        var error = Assert.Single(errors);
        Assert.Contains("row 2", error);
        Assert.Contains("output", error);

        File.WriteAllText(Path.Combine(_root, "broken.parquet"), "not parquet");
        var e = Assert.Throws<InvalidDataException>(() => AlignmentData.ReadSft(Path.Combine(_root, "broken.parquet"), errors));
        Assert.Contains("broken.parquet", e.Message);
    }

    /// <summary>Column names as they appear in the file.</summary>
    public sealed class ParquetSft
    {
        public string? instruction { get; set; }
        public string? output { get; set; }
        public string? messages { get; set; }
    }

    /// <summary>A tiny tokenizer, a base checkpoint recorded with <paramref name="tokenizerHash"/> (null: the tokenizer's own) and one SFT example.</summary>
    private (TextTokenizer Tokenizer, string Checkpoint, string Data) BaseCheckpoint(string? tokenizerHash)
    {
        var folder = Path.Combine(_root, "tok");
        new BpeTrainer(300).Train(["日本の首都は東京です。", "The capital of Japan is Tokyo."]).Save(folder);
        var tokenizer = TextTokenizer.Load(folder);
        var model = new Gpt(new GptConfig { VocabSize = tokenizer.VocabSize, Layers = 1, Heads = 2, Width = 16, Context = 24 });
        var info = new Pipeline.Contracts.Checkpoints.CheckpointInfo("base", 5, 0, tokenizerHash ?? tokenizer.Hash, null, new Pipeline.Contracts.Checkpoints.TrainingConfig { Model = model.Config });
        var checkpoint = Pipeline.Model.Checkpoints.Save(Path.Combine(_root, "base"), model, null, info, keepLast: 1);
        var data = Path.Combine(_root, "sft.jsonl");
        File.WriteAllText(data, """{"instruction": "首都は?", "output": "東京です。"}""" + "\n");
        return (tokenizer, checkpoint, data);
    }

    [Fact]
    public void A_stopped_job_writes_a_checkpoint_of_the_step_it_reached()
    {
        // Regression: on SIGINT/SIGTERM an alignment job died without a checkpoint.
        var (tokenizer, checkpoint, data) = BaseCheckpoint(tokenizerHash: null);
        using var stop = new CancellationTokenSource();
        var logger = new StopAfter(3, stop);
        var error = Assert.Throws<OperationCanceledException>(() =>
            new AlignmentJob(logger).Run(checkpoint, tokenizer, data, new AlignmentConfig { Steps = 1000, LogEvery = 1 }, Path.Combine(_root, "stopped"), "stopped", stop.Token));
        Assert.Contains("stopped at step 3 of 1000", error.Message);
        var saved = Assert.Single(Pipeline.Model.Checkpoints.List(Path.Combine(_root, "stopped")));
        Assert.Equal(3, Pipeline.Model.Checkpoints.ReadInfo(saved).Step);
    }

    /// <summary>A logger that cancels once it has seen a given number of step lines (a signal arriving mid-job).</summary>
    private sealed class StopAfter(int steps, CancellationTokenSource stop) : Microsoft.Extensions.Logging.ILogger
    {
        private int _seen;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (formatter(state, exception).StartsWith("align sft") && ++_seen == steps) stop.Cancel();
        }
    }

    [Fact]
    public void A_base_checkpoint_of_another_tokenizer_is_refused()
    {
        var (tokenizer, checkpoint, data) = BaseCheckpoint(tokenizerHash: "another-tokenizer");
        var error = Assert.Throws<InvalidDataException>(() =>
            new AlignmentJob(Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance).Run(checkpoint, tokenizer, data, new AlignmentConfig { Steps = 1 }, Path.Combine(_root, "out"), "aligned"));
        Assert.Contains("another-tokenizer", error.Message);
        Assert.Contains("refusing", error.Message);
        Assert.False(Directory.Exists(Path.Combine(_root, "out")));
    }

    [Fact]
    public void Malformed_jsonl_lines_are_named_and_the_rest_is_read()
    {
        var path = Path.Combine(_root, "sft.jsonl");
        File.WriteAllLines(path,
        [
            """{"instruction": "日本の首都は?", "output": "東京です。"}""",
            """{"instruction": "missing output"}""",
            """{not json""",
            """{"messages": [{"role": "system", "content": "簡潔に"}, {"role": "user", "content": "1+1?"}, {"role": "assistant", "content": ""}]}""",
        ]);
        var errors = new List<string>();
        var examples = AlignmentData.ReadSft(path, errors);
        Assert.Equal(2, examples.Count);
        Assert.Equal(2, errors.Count);
        Assert.Contains(errors, e => e.Contains("line 2") && e.Contains("output"));
        Assert.Contains(errors, e => e.Contains("line 3"));
        Assert.Equal("", examples[1].Messages[^1].Content); // an empty response is allowed
    }

    [Fact]
    public void The_chat_template_masks_everything_but_assistant_content()
    {
        var folder = Path.Combine(_root, "tok");
        new BpeTrainer(300).Train(["日本の首都は東京です。", "The capital of Japan is Tokyo.", "<|end|> is not a turn"]).Save(folder);
        var tokenizer = TextTokenizer.Load(folder);
        var template = new ChatTemplate(tokenizer);
        var (ids, trained) = template.Encode([new ChatMessage("user", "首都は<|end|>?"), new ChatMessage("assistant", "東京です。")]);
        Assert.Equal(tokenizer.SpecialIds[SpecialTokens.User], ids[0]);
        Assert.Equal(tokenizer.SpecialIds[SpecialTokens.EndOfTurn], ids[^1]);
        Assert.True(trained[^1]);
        var assistantStart = ids.IndexOf(tokenizer.SpecialIds[SpecialTokens.Assistant]);
        Assert.All(trained.Take(assistantStart + 1), t => Assert.False(t));
        Assert.All(trained.Skip(assistantStart + 1), t => Assert.True(t));
        // The user's literal "<|end|>" did not become a turn boundary.
        Assert.Equal(2, ids.Count(i => i == tokenizer.SpecialIds[SpecialTokens.EndOfTurn]));
        Assert.Equal("東京です。", tokenizer.Decode(ids.Skip(assistantStart + 1).SkipLast(1)));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
