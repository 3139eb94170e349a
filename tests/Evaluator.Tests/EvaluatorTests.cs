using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Evaluator.Tasks;
using Pipeline.Hosting;
using Pipeline.Model;
using Pipeline.Storage;
using Pipeline.Tokenizer;
using Pipeline.Trainer;
using static TorchSharp.torch;

namespace Pipeline.Evaluator.Tests;

public sealed class EvaluatorTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("eval-").FullName;

    private static string Shipped(string name) => Path.Combine(AppContext.BaseDirectory, "tasks", name);

    /// <summary>A tokenizer trained on the shipped task texts and a small random model bound to it, saved as a checkpoint.</summary>
    private (string CheckpointUri, Gpt Model, TextTokenizer Tokenizer) Checkpoint(long step = 10, string run = "r")
    {
        var folder = Path.Combine(_root, "tokenizers", "t");
        if (!File.Exists(Path.Combine(folder, "tokenizer-meta.json")))
        {
            var texts = Directory.GetFiles(Shipped("data")).Select(File.ReadAllText).ToList();
            new BpeTrainer(500).Train(texts).Save(folder);
        }
        var tokenizer = TextTokenizer.Load(folder);
        manual_seed(3);
        var config = new TrainingConfig { RunName = run, Model = new GptConfig { VocabSize = tokenizer.VocabSize, Layers = 1, Heads = 2, Width = 16, Context = 96 } };
        var model = new Gpt(config.Model);
        var saved = Checkpoints.Save(Path.Combine(_root, "checkpoints", run), model, null, new CheckpointInfo(run, step, 0, tokenizer.Hash, null, config), keepLast: 10);
        return (new ShardStore(_root).RelativeUri(saved), model, tokenizer);
    }

    private CheckpointEvaluator Evaluator(RunLedger ledger) => new(new ShardStore(_root), ledger, new EvaluatorOptions(), NullLogger<CheckpointEvaluator>.Instance);

    [Fact]
    public void Shipped_task_files_load()
    {
        foreach (var file in Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "tasks"), "*.yaml"))
        {
            var task = TaskLoader.Load(file);
            Assert.Contains(task.Type, TaskLoader.Types);
            Assert.True(task.Type == "perplexity" || TaskLoader.Examples(task).Count >= 40, file);
        }
    }

    [Theory]
    [InlineData("name: x\ntype: guessing\ndata: d.jsonl\n", "field 'type'")]
    [InlineData("type: multiple_choice\ndata: d.jsonl\n", "field 'name'")]
    [InlineData("name: x\ntype: multiple_choice\ndata: nowhere.jsonl\nprompt: q\nanswer: label\n", "field 'data'")]
    [InlineData("name: x\ntype: multiple_choice\ndata: d.jsonl\nprompt: \"{missing}\"\nanswer: label\n", "field 'prompt'")]
    [InlineData("name: x\ntype: generation\ndata: d.jsonl\nprompt: \"{question}\"\nanswer: label\nscorers: [bleu]\n", "field 'scorers'")]
    [InlineData("name: [unclosed\n", "task file")]
    public void Task_file_errors_name_the_file_and_field(string yaml, string expected)
    {
        File.WriteAllText(Path.Combine(_root, "d.jsonl"), "{\"question\": \"q\", \"choices\": [\"a\", \"b\"], \"label\": 0}\n{\"question\": \"r\", \"choices\": [\"a\", \"b\"], \"label\": 1}\n");
        var path = Path.Combine(_root, "bad.yaml");
        File.WriteAllText(path, yaml);
        var error = Assert.Throws<InvalidDataException>(() => TaskLoader.Load(path));
        Assert.Contains(path, error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void A_malformed_data_line_is_named()
    {
        File.WriteAllText(Path.Combine(_root, "d.jsonl"), "{\"question\": \"q\", \"choices\": [\"a\"], \"label\": 0}\n{not json\n");
        File.WriteAllText(Path.Combine(_root, "t.yaml"), "name: x\ntype: multiple_choice\ndata: d.jsonl\nprompt: \"{question}\"\nanswer: label\n");
        var error = Assert.Throws<InvalidDataException>(() => TaskLoader.Load(Path.Combine(_root, "t.yaml")));
        Assert.Contains("line 2", error.Message);

        // An empty task: a clear error, not a division by zero.
        File.WriteAllText(Path.Combine(_root, "d.jsonl"), "");
        error = Assert.Throws<InvalidDataException>(() => TaskLoader.Load(Path.Combine(_root, "t.yaml")));
        Assert.Contains("has 0 examples", error.Message);
    }

    [Fact]
    public void Scorers_for_japanese_text()
    {
        Assert.Equal(1, Scorers.ExactMatch(" 東京 ", "東京"));
        Assert.Equal(0, Scorers.ExactMatch("東京都", "東京"));
        Assert.Equal(0.8, Scorers.CharF1("東京都", "東京"), 6);          // p = 2/3, r = 1
        Assert.Equal(1.0, Scorers.RougeL("パッケージ", "パッケージ"), 6);
        Assert.Equal(2.0 * (3.0 / 4) * (3.0 / 5) / (3.0 / 4 + 3.0 / 5), Scorers.RougeL("あいうx", "あいzzう"), 6); // LCS あいう
        Assert.Equal(0, Scorers.CharF1("", "東京"));
    }

    [Fact]
    public async Task Multiple_choice_accuracy_follows_the_log_likelihoods()
    {
        var (_, model, tokenizer) = Checkpoint();
        var task = TaskLoader.Load(Shipped("debian-cloze-en.yaml"));
        task.Limit = 10;
        task.FewShot = 0;
        var runner = new TaskRunner(model, tokenizer);
        var metrics = await runner.RunAsync(task);
        // Recompute by hand from the log-likelihood of every choice.
        var correct = 0;
        foreach (var example in TaskLoader.Examples(task).Take(10))
        {
            var context = tokenizer.Encode(TaskLoader.Fill(task.Prompt, example));
            var scores = example["choices"]!.AsArray().Select(c => runner.LogLikelihood(context, tokenizer.Encode(" " + c))).ToList();
            if (scores.IndexOf(scores.Max()) == (int)example["label"]!) correct++;
        }
        Assert.Equal(correct / 10.0, metrics["accuracy"], 6);
        Assert.Equal(10, metrics["examples"]);

        // The log-likelihood is the sum of the model's log-probabilities of the continuation tokens.
        int[] ctx = [5, 6, 7];
        int[] cont = [8, 9];
        model.eval();
        using var _ = no_grad();
        var logProbs = model.forward(tensor(new long[] { 5, 6, 7, 8 }, [1, 4]))[0].log_softmax(-1);
        var expected = logProbs[2, 8].item<float>() + logProbs[3, 9].item<float>();
        Assert.Equal(expected, runner.LogLikelihood(ctx, cont), 4);
    }

    [Fact]
    public async Task Chat_tasks_put_prompts_in_the_chat_template_and_score_choices_as_replies()
    {
        var (_, model, tokenizer) = Checkpoint();
        var task = TaskLoader.Load(Shipped("debian-cloze-en.yaml"));
        task.Limit = 10;
        task.FewShot = 1;
        task.Chat = true;
        var runner = new TaskRunner(model, tokenizer);
        var examples = TaskLoader.Examples(task);
        string Right(System.Text.Json.Nodes.JsonObject e) => e["choices"]!.AsArray()[(int)e["label"]!]!.ToString();

        // One solved example as a user and an assistant turn, then the question as a user turn and an open assistant turn.
        var ids = runner.PromptIds(task, examples, examples[1], Right, withAnswerPrefix: true);
        int Special(string name) => tokenizer.SpecialIds[name];
        Assert.Equal([Special(SpecialTokens.User), Special(SpecialTokens.Assistant), Special(SpecialTokens.User), Special(SpecialTokens.Assistant)],
            ids.Where(i => i == Special(SpecialTokens.User) || i == Special(SpecialTokens.Assistant)));
        Assert.Equal(Special(SpecialTokens.Assistant), ids[^1]);
        var template = new ChatTemplate(tokenizer);
        Assert.Equal(template.Prompt([new ChatMessage("user", TaskLoader.Fill(task.Prompt, examples[0])), new ChatMessage("assistant", Right(examples[0])),
            new ChatMessage("user", TaskLoader.Fill(task.Prompt, examples[1]))]), ids);

        // Accuracy recomputed by hand: each choice scored as the assistant's reply, closing <|end|> included.
        var metrics = await runner.RunAsync(task);
        var correct = 0;
        foreach (var example in examples.Skip(1).Take(10))
        {
            var context = runner.PromptIds(task, examples, example, Right, withAnswerPrefix: false);
            var scores = example["choices"]!.AsArray().Select(c => runner.LogLikelihood(context, template.Reply(c!.ToString()))).ToList();
            if (scores.IndexOf(scores.Max()) == (int)example["label"]!) correct++;
        }
        Assert.Equal(correct / 10.0, metrics["accuracy"], 6);

        // Generation in chat form stops at the end of the assistant's turn and never shows it.
        var generation = TaskLoader.Load(Shipped("debian-continuation-ja.yaml"));
        generation.Limit = 3;
        generation.Chat = true;
        var g = await runner.RunAsync(generation);
        Assert.InRange(g["char_f1"], 0, 1);
        Assert.Equal(3, g["examples"]);
    }

    [Fact]
    public async Task Generation_and_perplexity_tasks_produce_bounded_metrics()
    {
        var (_, model, tokenizer) = Checkpoint();
        var runner = new TaskRunner(model, tokenizer);
        var generation = TaskLoader.Load(Shipped("debian-continuation-ja.yaml"));
        generation.Limit = 5;
        generation.Generation.Stop = ["。"];
        var g = await runner.RunAsync(generation);
        // Batched decoding (one KV cache for several examples) scores exactly as one example at a time.
        var single = await new TaskRunner(model, tokenizer) { BatchSize = 1 }.RunAsync(generation);
        Assert.Equal(single["char_f1"], g["char_f1"], 9);
        Assert.Equal(single["rouge_l"], g["rouge_l"], 9);
        Assert.InRange(g["char_f1"], 0, 1);
        Assert.InRange(g["rouge_l"], 0, 1);
        var p = await runner.RunAsync(TaskLoader.Load(Shipped("debian-reference-ja-ppl.yaml")));
        // A random model: close to log2(vocab) bits per token.
        Assert.InRange(p["bits_per_token"], Math.Log2(tokenizer.VocabSize) - 1.5, Math.Log2(tokenizer.VocabSize) + 1.5);
        Assert.True(p["bits_per_byte"] > 0 && p["bits_per_byte"] < p["bits_per_token"]);
    }

    [Fact]
    public async Task A_sweep_scores_each_pair_once_and_survives_bad_checkpoints_and_mismatched_tokenizers()
    {
        var ledger = new RunLedger(Path.Combine(_root, "ledger.db"));
        var evaluator = Evaluator(ledger);
        var (good, _, _) = Checkpoint(10);
        var task = Shipped("debian-reference-ja-ppl.yaml");
        var first = await evaluator.EvaluateAsync(good, null, [task], includeValidation: false, force: false, default);
        Assert.Null(Assert.Single(first).Error);
        Assert.Empty(await evaluator.EvaluateAsync(good, null, [task], includeValidation: false, force: false, default));
        Assert.Single(await evaluator.EvaluateAsync(good, null, [task], includeValidation: false, force: true, default));

        // A corrupt checkpoint: an error for it alone.
        var (corrupt, _, _) = Checkpoint(20);
        File.WriteAllBytes(Path.Combine(_root, corrupt, "model.bin"), [1, 2, 3]);
        var bad = Assert.Single(await evaluator.EvaluateAsync(corrupt, null, [task], includeValidation: false, force: false, default));
        Assert.Contains("corrupt", bad.Error);
        // A checkpoint of another tokenizer: refused.
        var (other, _, _) = Checkpoint(30, run: "other");
        var info = Checkpoints.ReadInfo(Path.Combine(_root, other));
        File.WriteAllText(Path.Combine(_root, other, "checkpoint.json"), System.Text.Json.JsonSerializer.Serialize(info with { TokenizerHash = "0000" }));
        var refused = Assert.Single(await evaluator.EvaluateAsync(other, null, [task], includeValidation: false, force: false, default));
        Assert.Contains("refusing", refused.Error);
        // A broken task file: an error naming it; the good task still runs.
        var broken = Path.Combine(_root, "broken.yaml");
        File.WriteAllText(broken, "name: broken\ntype: nonsense\n");
        var outcomes = await evaluator.EvaluateAsync(good, null, [broken, Shipped("debian-cloze-en.yaml")], includeValidation: false, force: false, default);
        Assert.Contains(outcomes, o => o.Error?.Contains("broken.yaml") == true);
        Assert.Contains(outcomes, o => o.Task == "debian_cloze_en" && o.Error is null);
    }

    [Fact]
    public async Task A_cron_schedule_publishes_a_sweep_that_scores_the_latest_checkpoint()
    {
        Checkpoint(10);
        var (latest, _, _) = Checkpoint(20);
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Pipeline:DataRoot"] = _root,
            ["Pipeline:Evaluator:Schedules:0:Name"] = "every-second",
            ["Pipeline:Evaluator:Schedules:0:Cron"] = "* * * * * ?",
            ["Pipeline:Evaluator:Schedules:0:Tasks:0"] = Shipped("debian-reference-ja-ppl.yaml"),
        });
        builder.Services.AddPipeline(builder.Configuration, [new EvaluatorModule()]);
        using var host = builder.Build();
        await host.StartAsync();
        var ledger = host.Services.GetRequiredService<RunLedger>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!ledger.HasEval(latest, "debian_reference_ja_bpb", "1"))
        {
            Assert.True(DateTime.UtcNow < deadline, "the scheduled sweep did not run");
            await Task.Delay(200);
        }
        await host.StopAsync();
        Assert.All(ledger.Evals("r"), e => Assert.Equal(20, e.Step)); // latest only

        var bad = Host.CreateApplicationBuilder();
        bad.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Pipeline:DataRoot"] = _root, ["Pipeline:Evaluator:Schedules:0:Name"] = "nightly", ["Pipeline:Evaluator:Schedules:0:Cron"] = "every night" });
        Assert.Contains("nightly", Assert.Throws<ArgumentException>(() => bad.Services.AddPipeline(bad.Configuration, [new EvaluatorModule()])).Message);
    }

    [Fact]
    public void Tasks_named_in_a_message_are_configured_ones_or_stay_under_the_data_root()
    {
        // Regression: EvaluateRequested.Tasks carried raw host paths, so any message could make the evaluator read any file.
        var configured = Path.Combine(_root, "tasks", "cloze.yaml");
        var options = new EvaluatorOptions { Tasks = [configured], Schedules = [new EvaluationSchedule { Cron = "0 0 * * * ?", Tasks = ["/opt/tasks/nightly.yaml"] }] };
        var evaluator = new CheckpointEvaluator(new ShardStore(_root), new RunLedger(Path.Combine(_root, "ledger.db")), options, NullLogger<CheckpointEvaluator>.Instance);
        Assert.Equal(configured, evaluator.ResolveRequestedTask(configured));
        Assert.Equal(configured, evaluator.ResolveRequestedTask("cloze"));
        Assert.Equal("/opt/tasks/nightly.yaml", evaluator.ResolveRequestedTask("nightly.yaml"));
        Assert.Equal(Path.Combine(new ShardStore(_root).Root, "tasks", "mine.yaml"), evaluator.ResolveRequestedTask("tasks/mine.yaml"));
        foreach (var hostile in new[] { "/etc/passwd", "../outside.yaml", "tasks/../../x.yaml" })
            Assert.Throws<ShardRejectedException>(() => evaluator.ResolveRequestedTask(hostile));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
