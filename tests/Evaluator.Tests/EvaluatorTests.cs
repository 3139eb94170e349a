using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Evaluator.Tasks;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Model;
using Pipeline.Storage;
using Pipeline.Bpe;
using Pipeline.Trainer;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

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

    private CheckpointEvaluator Evaluator(Ledger ledger) => new(new ShardStore(_root), ledger, new EvaluatorOptions(), NullLogger<CheckpointEvaluator>.Instance);

    [Fact]
    public void Shipped_task_files_load()
    {
        var files = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "tasks"), "*.yaml");
        Assert.True(files.Length >= 5, $"{files.Length} task files found"); // a glob that finds nothing must not pass
        foreach (var file in files)
        {
            var task = TaskLoader.Load(file);
            Assert.Contains(task.Type, TaskLoader.Types);
            Assert.True(task.Type == "perplexity" || TaskLoader.Examples(task).Count >= 40, file);
        }
    }

    /// <summary>The shipped lm-eval task definitions with this project's JGLUE/ELYZA-schema fixtures in their data folders.</summary>
    private string LmEvalTasks()
    {
        var folder = Path.Combine(_root, "lm-eval");
        foreach (var file in Directory.GetFiles(Shipped("lm-eval"), "*.yaml"))
        {
            Directory.CreateDirectory(folder);
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)), overwrite: true);
        }
        var fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures", "lm-eval");
        foreach (var file in Directory.GetFiles(fixtures, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(folder, Path.GetRelativePath(fixtures, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
        return folder;
    }

    [Fact]
    public async Task Lm_eval_task_yaml_runs_JGLUE_tasks_as_lm_eval_defines_them()
    {
        var (_, model, tokenizer) = Checkpoint();
        var folder = LmEvalTasks();
        var runner = new TaskRunner(model, tokenizer);

        // JCommonsenseQA: three shots from the train split, then each validation question; acc recomputed by hand
        // from lm-eval's definition: shots "doc_to_text + target_delimiter + target", joined by fewshot_delimiter.
        var jcqa = TaskLoader.Load(Path.Combine(folder, "jcommonsenseqa.yaml"));
        Assert.Equal(("multiple_choice", 3, 8), (jcqa.Type, jcqa.FewShot, TaskLoader.Examples(jcqa).Count));
        var train = File.ReadAllLines(Path.Combine(folder, "data", "jcommonsenseqa", "train-v1.1.json")).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!.AsObject()).ToList();
        var valid = File.ReadAllLines(Path.Combine(folder, "data", "jcommonsenseqa", "valid-v1.1.json")).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!.AsObject()).ToList();
        string Choice(System.Text.Json.Nodes.JsonObject d, int i) => d[$"choice{i}"]!.ToString();
        var shots = string.Concat(train.Select(d => $"質問: {d["question"]}\n答え: {Choice(d, (int)d["label"]!)}\n\n"));
        var correct = 0;
        foreach (var doc in valid)
        {
            var scores = Enumerable.Range(0, 5).Select(i =>
            {
                var (ctx, cont) = runner.EncodePair($"{shots}質問: {doc["question"]}\n答え:", " " + Choice(doc, i));
                return runner.LogLikelihood(ctx, cont);
            }).ToList();
            if (scores.IndexOf(scores.Max()) == (int)doc["label"]!) correct++;
        }
        var metrics = await runner.RunAsync(jcqa);
        Assert.Equal((double)correct / valid.Count, metrics["acc"], 9);
        Assert.True(metrics.ContainsKey("acc_norm_stderr"));

        // JNLI and MARC-ja: label strings mapped to choices by a dict literal.
        foreach (var (file, choices) in new[] { ("jnli.yaml", 3), ("marc-ja.yaml", 2) })
        {
            var task = TaskLoader.Load(Path.Combine(folder, file));
            var rows = TaskLoader.Examples(task);
            Assert.All(rows, r => Assert.Equal(choices, r["choices"]!.AsArray().Count));
            Assert.InRange((await runner.RunAsync(task))["acc"], 0, 1);
        }
        var jnliRows = TaskLoader.Examples(TaskLoader.Load(Path.Combine(folder, "jnli.yaml")));
        Assert.Equal([0, 1, 2, 0, 1, 2], jnliRows.Select(r => (int)r["target"]!));

        // JSQuAD: generation until a newline, exact match and JSQuAD character F1 against answers.text[0].
        var jsquad = TaskLoader.Load(Path.Combine(folder, "jsquad.yaml"));
        Assert.Equal("東京", TaskLoader.Examples(jsquad)[2]["target"]!.ToString());
        Assert.StartsWith("文章: Debian は自由な", TaskLoader.Examples(jsquad)[0]["text"]!.ToString());
        var squad = await runner.RunAsync(jsquad);
        Assert.InRange(squad["exact_match"], 0, 1);
        Assert.InRange(squad["jsquad_char_f1"], 0, 1);
    }

    /// <summary>A judge endpoint in-process: records what it is sent and answers 4.</summary>
    private sealed class RecordingJudge : HttpMessageHandler
    {
        public List<System.Text.Json.Nodes.JsonObject> Requests { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            Requests.Add(System.Text.Json.Nodes.JsonNode.Parse(await request.Content!.ReadAsStringAsync(ct))!.AsObject());
            return new HttpResponseMessage(System.Net.HttpStatusCode.OK) { Content = new StringContent("{\"score\": 4}") };
        }
    }

    [Fact]
    public async Task Elyza_tasks_100_is_judged_with_its_rubric_and_each_examples_aspect()
    {
        var (_, model, tokenizer) = Checkpoint();
        var folder = LmEvalTasks();
        var file = Path.Combine(folder, "elyza-tasks-100.yaml");
        Assert.Contains("judge_url", Assert.Throws<InvalidDataException>(() => TaskLoader.Load(file)).Message); // no endpoint configured
        File.WriteAllText(file, File.ReadAllText(file).Replace("judge_url: \"\"", "judge_url: http://judge.invalid/score"));
        var task = TaskLoader.Load(file);
        task.Generation.MaxTokens = 8;
        var judge = new RecordingJudge();
        var metrics = await new TaskRunner(model, tokenizer, new HttpClient(judge)).RunAsync(task);
        Assert.Equal(4, metrics["judge"]);
        Assert.Equal(3, judge.Requests.Count);
        Assert.Equal("15 です。", judge.Requests[2]["reference"]!.ToString());
        Assert.Contains("答えが 15 でなければ", judge.Requests[2]["aspect"]!.ToString());
        Assert.Contains("5 = right and genuinely helpful", judge.Requests[0]["rubric"]!.ToString());
    }

    [Fact]
    public void The_lm_eval_hooks_shipped_beside_the_tasks_score_as_this_project_does()
    {
        // lm-eval has no JSQuAD character F1 and no judge: the shipped YAML names hooks in tasks/lm-eval/utils.py
        // (`!function utils.jsquad_char_f1`), which this loader maps to its own scorer. The Python hook, run by
        // Python itself, gives the same scores as Scorers.JsquadCharF1.
        var folder = LmEvalTasks();
        var jsquad = TaskLoader.Load(Path.Combine(folder, "jsquad.yaml"));
        Assert.Equal(["exact_match", "jsquad_char_f1"], jsquad.Scorers);
        var elyza = Path.Combine(folder, "elyza-tasks-100.yaml");
        File.WriteAllText(elyza, File.ReadAllText(elyza).Replace("judge_url: \"\"", "judge_url: \"http://127.0.0.1:9/judge\""));
        Assert.Equal(["judge"], TaskLoader.Load(elyza).Scorers);
        (string Output, string Reference)[] pairs = [("東京都", "都京東"), ("東京都", "東京"), ("ｄｅｂｉａｎ １２", "debian 12"), ("", ""), ("が", "か\u3099"), ("abc", "xyz"), (" 東 京 ", "東京")];
        var start = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3", [Shipped("lm-eval/utils.py")])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        start.Environment["PYTHONIOENCODING"] = "utf-8";
        using var python = System.Diagnostics.Process.Start(start)!;
        foreach (var (output, reference) in pairs)
            python.StandardInput.WriteLine(System.Text.Json.JsonSerializer.Serialize(new { output, reference }));
        python.StandardInput.Close();
        var scores = python.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => double.Parse(l, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        python.WaitForExit();
        Assert.True(python.ExitCode == 0, python.StandardError.ReadToEnd());
        Assert.Equal(pairs.Select(p => Scorers.JsquadCharF1(p.Output, p.Reference)), scores, (a, b) => Math.Abs(a - b) < 1e-12);
        // Other aggregations than the mean are refused by name.
        var changed = Path.Combine(folder, "jsquad-max.yaml");
        File.WriteAllText(changed, File.ReadAllText(Path.Combine(folder, "jsquad.yaml")).Replace("aggregation: mean", "aggregation: max"));
        Assert.Contains("aggregation 'max'", Assert.Throws<InvalidDataException>(() => TaskLoader.Load(changed)).Message);
    }

    [Theory]
    [InlineData("dataset_path: json", "dataset_path: shunk031/JGLUE", "no hub is reachable")]
    [InlineData("doc_to_target: label", "doc_to_target: !function utils.target", "!function")]
    [InlineData("output_type: multiple_choice", "output_type: loglikelihood", "'loglikelihood' is not supported")]
    [InlineData("doc_to_target: label", "doc_to_target: \"{{ label | int }}\"", "filters")]
    [InlineData("valid-v1.1.json", "missing.json", "does not exist")]
    public void Lm_eval_task_files_outside_what_is_supported_are_refused_by_name(string from, string to, string expected)
    {
        var folder = LmEvalTasks();
        var file = Path.Combine(folder, "jcommonsenseqa.yaml");
        File.WriteAllText(file, File.ReadAllText(file).Replace(from, to));
        Assert.Contains(expected, Assert.Throws<InvalidDataException>(() => TaskLoader.Load(file)).Message);
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

    [Theory]
    // llm-jp-eval exact_match after NFKC: full-width and half-width forms are equal; stripped.
    [InlineData("exact_match", " 東京 ", "東京", 1.0)]
    [InlineData("exact_match", "ＡＢＣ１２３", "ABC123", 1.0)]
    [InlineData("exact_match", "ｶﾀｶﾅ", "カタカナ", 1.0)]
    [InlineData("exact_match", "東京都", "東京", 0.0)]
    // llm-jp-eval char_f1 = thefuzz token_sort_ratio / 100: 2·LCS/(|a|+|b|), rounded to a whole percent.
    [InlineData("char_f1", "東京都", "東京", 0.8)]                 // LCS 2: 4/5
    [InlineData("char_f1", "東京都", "都京東", 0.33)]              // order matters: LCS 1, 2/6 = 0.333
    [InlineData("char_f1", "abcd", "abce", 0.75)]                // LCS 3: 6/8
    [InlineData("char_f1", "the cat sat", "sat the cat", 1.0)]   // tokens are sorted first
    [InlineData("char_f1", "東京です。", "東京です", 1.0)]          // punctuation is \W: a space, then stripped
    [InlineData("char_f1", "Ｔｏｋｙｏ", "tokyo", 1.0)]             // NFKC, then lower-cased
    [InlineData("char_f1", "あいうえお", "あいうx", 0.67)]          // LCS 3: 6/9 = 0.667
    [InlineData("char_f1", "", "東京", 0.0)]
    // llm-jp-eval set_f1: sets of lines; duplicates in the output count once.
    [InlineData("set_f1", "a\nb\nb", "a\nc", 0.5)]
    [InlineData("set_f1", "東京\n大阪", "大阪\n東京", 1.0)]
    // JGLUE JSQuAD character F1: a bag of characters.
    [InlineData("jsquad_char_f1", "東京都", "都京東", 1.0)]
    [InlineData("jsquad_char_f1", "東京都", "東京", 0.8)]
    // LCS F1 over characters.
    [InlineData("char_lcs_f1", "パッケージ", "パッケージ", 1.0)]
    [InlineData("char_lcs_f1", "あいうx", "あいzzう", 0.6666666666666666)]  // LCS あいう: p 3/4, r 3/5
    public void Metrics_follow_their_reference_definitions(string metric, string output, string reference, double expected)
    {
        var value = metric switch
        {
            "exact_match" => Scorers.ExactMatch(output, reference),
            "char_f1" => Scorers.CharF1(output, reference),
            "set_f1" => Scorers.SetF1(output, reference),
            "jsquad_char_f1" => Scorers.JsquadCharF1(output, reference),
            _ => Scorers.CharLcsF1(output, reference),
        };
        Assert.Equal(expected, value, 6);
    }

    [Fact]
    public void Standard_errors_and_the_stop_string_follow_lm_eval()
    {
        // lm-eval mean_stderr: sample standard deviation over sqrt(n). [1,0,1,1]: mean 0.75, variance 0.25, 0.25.
        Assert.Equal(0.25, Scorers.MeanStderr([1, 0, 1, 1])!.Value, 9);
        Assert.Null(Scorers.MeanStderr([1]));
        // The output is cut before the first stop string (lm-eval's until); the reference is compared as written, as
        // llm-jp-eval compares it (#31: cutting "。" from references too changed exact_match, 0.8 against 0.6).
        var (output, reference) = TaskRunner.AtStop("東京です。\n次の文", "東京です。", ["\n"]);
        Assert.Equal(("東京です。", "東京です。"), (output, reference));
        Assert.Equal(1, Scorers.ExactMatch(output, reference));
        Assert.Equal(("東京です", "東京です。"), TaskRunner.AtStop("東京です。次の文", "東京です。", ["。"]));
        Assert.Equal(0, Scorers.ExactMatch("東京です", "東京です。"));
        // Cutting it from the reference as well is the task's choice (generation.strip_stop_from_reference).
        Assert.Equal(("東京です", "東京です"), TaskRunner.AtStop("東京です。次の文", "東京です。", ["。"], stripReference: true));
    }

    [Fact]
    public async Task A_model_that_reproduces_the_answers_scores_exact_match_on_the_shipped_japanese_task()
    {
        // A model that reproduces the answers scores exact_match: the task stops at a line break, so the output keeps
        // the "。" its reference ends with. Here a small model memorizes three examples.
        var (_, _, tokenizer) = Checkpoint();
        var task = TaskLoader.Load(Shipped("debian-continuation-ja.yaml"));
        task.Limit = 3;
        var examples = TaskLoader.Examples(task).Take(3).ToList();
        var stream = new List<int>();
        for (var i = 0; i < 200; i++)
            foreach (var e in examples) stream.AddRange(tokenizer.Encode(e["input"]!.ToString() + e["output"]) .Append(tokenizer.EndOfText));
        var data = TokenData.FromTokens([.. stream], [.. stream.Take(2000)], tokenizer.Hash);
        var config = new TrainingConfig
        {
            RunName = "memorize", Model = new GptConfig { VocabSize = tokenizer.VocabSize, Layers = 2, Heads = 2, Width = 64, Context = 64 },
            BatchSize = 8, MaxSteps = 200, WarmupSteps = 10, LearningRate = 3e-3, MinLearningRate = 1e-3, EvalEvery = 1000, CheckpointEvery = 1000,
            LogEvery = 1000, Threads = 2, Device = "cpu", Seed = 7,
        };
        var folder = Path.Combine(_root, "checkpoints", "memorize");
        await new TrainingRun(config, data, folder, NullLogger.Instance).RunAsync(default);
        var (model, _) = Checkpoints.Load(Checkpoints.List(folder)[^1], CPU);
        var metrics = await new TaskRunner(model, tokenizer).RunAsync(task);
        Assert.True(metrics["exact_match"] > 0, $"exact_match {metrics["exact_match"]}, char_f1 {metrics["char_f1"]}");
    }

    [Fact]
    public void Contamination_counts_examples_whose_n_grams_occur_in_the_corpus()
    {
        var cloze = TaskLoader.Load(Shipped("debian-cloze-en.yaml"));
        var continuation = TaskLoader.Load(Shipped("debian-continuation-ja.yaml"));
        string Text(EvalTask task, int i, string answer) => TaskLoader.Fill(task.Prompt, TaskLoader.Examples(task)[i]) + " " + answer;
        var en = TaskLoader.Examples(cloze)[0];
        var ja = TaskLoader.Examples(continuation)[1];
        var corpus = new[]
        {
            // One English example, right choice filled in, inside a longer document (13-word windows match across it).
            "Intro text. " + Text(cloze, 0, en["choices"]!.AsArray()[(int)en["label"]!]!.ToString()) + " More text after it.",
            // One Japanese example: its prompt and answer, as a 50-character run.
            "前置き。" + ja["input"] + ja["output"] + "後書き。",
            "unrelated text that shares nothing with any task at all, not a single thirteen word run",
        };
        var result = Contamination.Measure([cloze, continuation], corpus);
        Assert.Equal(("debian_cloze_en", 1), (result[0].Task, result[0].Contaminated));
        Assert.Equal(TaskLoader.Examples(cloze).Count, result[0].Examples);
        Assert.Equal(1, result[1].Contaminated);
        Assert.Equal(0, Contamination.Measure([cloze, continuation], [corpus[2]]).Sum(r => r.Contaminated));
        // Short shared phrases are not contamination: fewer than 13 words, fewer than 50 characters.
        Assert.Empty(Contamination.Grams("Debian is a free operating system."));
        Assert.Empty(Contamination.Grams("日本の首都は東京です。"));
    }

    [Fact]
    public void Context_and_continuation_are_tokenized_together_and_split_at_the_boundary()
    {
        var (_, model, tokenizer) = Checkpoint();
        var runner = new TaskRunner(model, tokenizer);
        // A Japanese example with an empty answer prefix: the tokens of the whole text, split after the context's.
        var (context, continuation) = runner.EncodePair("日本の首都は", "東京です");
        Assert.Equal(tokenizer.Encode("日本の首都は"), context);
        Assert.Equal(tokenizer.Encode("日本の首都は東京です"), context.Concat(continuation));
        // Trailing whitespace of the context moves to the continuation (lm-eval's _encode_pair).
        var (spaced, rest) = runner.EncodePair("Debian is ", "free");
        Assert.Equal(tokenizer.Encode("Debian is"), spaced);
        Assert.Equal(tokenizer.Encode("Debian is free"), spaced.Concat(rest));
        // And the log-likelihood is the model's log-probability of exactly those continuation tokens in the whole text.
        var whole = tokenizer.Encode("日本の首都は東京です").ToArray();
        model.eval();
        using var _ = no_grad();
        var logProbs = model.forward(tensor(whole[..^1].Select(i => (long)i).ToArray(), [1, whole.Length - 1]))[0].log_softmax(-1);
        var expected = Enumerable.Range(context.Count, continuation.Count).Sum(i => (double)logProbs[i - 1, whole[i]].item<float>());
        Assert.Equal(expected, runner.LogLikelihood(context, continuation), 4);
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
        int correct = 0, correctNorm = 0;
        var perExample = new List<double>();
        foreach (var example in TaskLoader.Examples(task).Take(10))
        {
            // lm-eval: context and continuation tokenized together, split after the context's own tokens;
            // acc_norm divides by the choice's length in characters.
            var choices = example["choices"]!.AsArray().Select(c => c!.ToString()).ToList();
            var scores = choices.Select(c =>
            {
                var (ctx, cont) = runner.EncodePair(TaskLoader.Fill(task.Prompt, example), " " + c);
                return runner.LogLikelihood(ctx, cont);
            }).ToList();
            var norm = scores.Select((ll, i) => ll / choices[i].EnumerateRunes().Count()).ToList();
            var right = scores.IndexOf(scores.Max()) == (int)example["label"]!;
            if (right) correct++;
            perExample.Add(right ? 1 : 0);
            if (norm.IndexOf(norm.Max()) == (int)example["label"]!) correctNorm++;
        }
        Assert.Equal(correct / 10.0, metrics["acc"], 6);
        Assert.Equal(correctNorm / 10.0, metrics["acc_norm"], 6);
        Assert.Equal(Scorers.MeanStderr(perExample)!.Value, metrics["acc_stderr"], 9);
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
        Assert.Equal(correct / 10.0, metrics["acc"], 6);

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
        Assert.Equal(single["char_lcs_f1"], g["char_lcs_f1"], 9);
        Assert.InRange(g["char_f1"], 0, 1);
        Assert.InRange(g["char_lcs_f1"], 0, 1);
        var p = await runner.RunAsync(TaskLoader.Load(Shipped("debian-reference-ja-ppl.yaml")));
        // A random model: close to log2(vocab) bits per token.
        Assert.InRange(p["bits_per_token"], Math.Log2(tokenizer.VocabSize) - 1.5, Math.Log2(tokenizer.VocabSize) + 1.5);
        Assert.True(p["bits_per_byte"] > 0 && p["bits_per_byte"] < p["bits_per_token"]);
        Assert.Equal(Math.Pow(2, p["bits_per_byte"]), p["byte_perplexity"], 6);
        Assert.True(p["bits_per_byte_stderr"] > 0 && p["bits_per_byte_stderr"] < p["bits_per_byte"] / 2);
        Assert.True(p["word_perplexity"] > p["byte_perplexity"]);

        // Regression: text without spaces is one "word" per paragraph, whose perplexity overflowed to infinity and
        // its bootstrap error to NaN, which the ledger cannot store: the task failed. Now it is left out.
        var unspaced = string.Concat(File.ReadAllLines(Shipped("data/debian-reference-ja-sample.txt")).Select(l => System.Text.RegularExpressions.Regex.Replace(l, @"\s", "")));
        var overflow = runner.Perplexity(unspaced + "\n\n" + unspaced[..(unspaced.Length / 2)]);
        Assert.All(overflow.Values, v => Assert.True(double.IsFinite(v)));
        Assert.DoesNotContain("word_perplexity", overflow.Keys);
        Assert.True(overflow["bits_per_byte_stderr"] > 0);
    }

    [Fact]
    public void Perplexity_scores_every_token_of_each_document_as_lm_evals_rolling_loglikelihood()
    {
        // Regression (#31): the first token was not scored, words were counted per 128-token window and bytes after
        // decoding each window (U+FFFD where a window split a character). Here the definition is computed directly:
        // lm-eval's get_rolling_token_windows(prefix = end of text, context_len = 1) made disjoint, each window one
        // forward pass of the model, log-softmax at the predicted positions; words as re.split(r"\s+", doc), bytes of
        // the document's UTF-8 text.
        var (_, model, tokenizer) = Checkpoint();
        var lines = File.ReadAllLines(Shipped("data/debian-reference-ja-sample.txt"));
        string[] documents = [string.Join("\n", lines.Take(8)), lines[8] + "  spaced\tout words "];
        var text = string.Join("\n\n", documents) + "\n";
        Assert.Equal(documents, TaskRunner.PerplexityDocuments(text));
        var length = model.Config.Context;
        double nll = 0;
        long tokens = 0, bytes = 0, words = 0;
        model.eval();
        using (no_grad())
        {
            foreach (var document in documents)
            {
                var ids = tokenizer.Encode(document).ToList();
                Assert.True(document != documents[0] || ids.Count > 2 * length, $"{ids.Count} tokens: the first document must span several windows");
                tokens += ids.Count;
                bytes += System.Text.Encoding.UTF8.GetByteCount(document);
                words += System.Text.RegularExpressions.Regex.Split(document, @"\s+").Length;
                for (var end = 0; end < ids.Count;)
                {
                    var predict = Math.Min(length, ids.Count - end);
                    // The first window reads the prefix token and the document's start; later ones the tokens before them.
                    var input = end == 0 ? ids.Take(predict - 1).Prepend(tokenizer.EndOfText).ToList() : ids.Skip(end + predict - length - 1).Take(length).ToList();
                    using var scope = NewDisposeScope();
                    var logProbs = nn.functional.log_softmax(model.forward(tensor(input.Select(i => (long)i).ToArray(), [1, input.Count])), -1)[0];
                    for (var k = 0; k < predict; k++)
                        nll -= logProbs[input.Count - predict + k, ids[end + k]].item<float>();
                    end += predict;
                }
            }
        }
        var p = new TaskRunner(model, tokenizer).Perplexity(text);
        Assert.Equal(Math.Exp(nll / words), p["word_perplexity"], 1e-3 * Math.Exp(nll / words));
        Assert.Equal(nll / bytes / Math.Log(2), p["bits_per_byte"], 1e-4);
        Assert.Equal(Math.Exp(nll / bytes), p["byte_perplexity"], 1e-4);
        Assert.Equal(nll / tokens / Math.Log(2), p["bits_per_token"], 1e-4);
        // Documents, not windows, are what the bootstrap resamples: two documents give a non-zero spread.
        Assert.True(p["bits_per_byte_stderr"] > 0);
    }

    [Fact]
    public async Task A_sweep_scores_each_pair_once_and_survives_bad_checkpoints_and_mismatched_tokenizers()
    {
        var ledger = new Ledger(Path.Combine(_root, "ledger.db"));
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
        var ledger = host.Services.GetRequiredService<Ledger>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!ledger.Evaluations.HasEval(latest, "debian_reference_ja_bpb", "1"))
        {
            Assert.True(DateTime.UtcNow < deadline, "the scheduled sweep did not run");
            await Task.Delay(200);
        }
        await host.StopAsync();
        Assert.All(ledger.Evaluations.Evals("r"), e => Assert.Equal(20, e.Step)); // latest only

        var bad = Host.CreateApplicationBuilder();
        bad.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Pipeline:DataRoot"] = _root, ["Pipeline:Evaluator:Schedules:0:Name"] = "nightly", ["Pipeline:Evaluator:Schedules:0:Cron"] = "every night" });
        Assert.Contains("nightly", Assert.Throws<ArgumentException>(() => bad.Services.AddPipeline(bad.Configuration, [new EvaluatorModule()])).Message);
    }

    [Fact]
    public async Task Tasks_named_in_a_message_are_configured_ones_or_stay_under_the_data_root()
    {
        // Regression: EvaluateRequested.Tasks carried raw host paths, so any message could make the evaluator read any file.
        var configured = Path.Combine(_root, "tasks", "cloze.yaml");
        var options = new EvaluatorOptions { Tasks = [configured], Schedules = [new EvaluationSchedule { Cron = "0 0 * * * ?", Tasks = ["/opt/tasks/nightly.yaml"] }] };
        var evaluator = new CheckpointEvaluator(new ShardStore(_root), new Ledger(Path.Combine(_root, "ledger.db")), options, NullLogger<CheckpointEvaluator>.Instance);
        Assert.Equal(configured, await evaluator.ResolveRequestedTaskAsync(configured));
        Assert.Equal(configured, await evaluator.ResolveRequestedTaskAsync("cloze"));
        Assert.Equal("/opt/tasks/nightly.yaml", await evaluator.ResolveRequestedTaskAsync("nightly.yaml"));
        Assert.Equal(Path.Combine(new ShardStore(_root).Root, "tasks", "mine.yaml"), await evaluator.ResolveRequestedTaskAsync("tasks/mine.yaml"));
        foreach (var hostile in new[] { "/etc/passwd", "../outside.yaml", "tasks/../../x.yaml" })
            await Assert.ThrowsAsync<ShardRejectedException>(() => evaluator.ResolveRequestedTaskAsync(hostile));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
