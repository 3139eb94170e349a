using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Pipeline.Model;
using Pipeline.Tokenizer;
using static TorchSharp.torch;

namespace Pipeline.Evaluator.Tasks;

/// <summary>Runs one task on one model; returns the metrics (the ledger stores them per checkpoint, task and version).</summary>
public sealed class TaskRunner(Gpt model, TextTokenizer tokenizer, HttpClient? judge = null)
{
    private readonly ChatTemplate _chat = new(tokenizer);

    /// <summary>Generation examples decoded together (one KV cache per batch).</summary>
    public int BatchSize { get; init; } = 8;

    public async Task<IReadOnlyDictionary<string, double>> RunAsync(EvalTask task, CancellationToken ct = default) => task.Type switch
    {
        "perplexity" => Perplexity(File.ReadAllText(TaskLoader.DataPath(task))),
        "multiple_choice" => MultipleChoice(task),
        "generation" => await GenerationAsync(task, ct),
        _ => throw new InvalidDataException($"task '{task.Name}': unknown type '{task.Type}'"),
    };

    /// <summary>Bits per byte and per token of a text, in windows of the model's context.</summary>
    public Dictionary<string, double> Perplexity(string text)
    {
        var ids = tokenizer.Encode(text).ToArray();
        if (ids.Length < 2) throw new InvalidDataException("the text is too short to score");
        model.eval();
        using var _ = no_grad();
        var context = model.Config.Context;
        double nll = 0;
        long scored = 0;
        for (var start = 0; start < ids.Length - 1; start += context)
        {
            using var scope = NewDisposeScope();
            var length = Math.Min(context, ids.Length - 1 - start);
            var x = tensor(ids.AsSpan(start, length).ToArray().Select(i => (long)i).ToArray(), [1, length]);
            var y = tensor(ids.AsSpan(start + 1, length).ToArray().Select(i => (long)i).ToArray(), [1, length]);
            nll += nn.functional.cross_entropy(model.forward(x).view(-1, model.Config.VocabSize), y.view(-1), reduction: nn.Reduction.Sum).item<float>();
            scored += length;
        }
        var bytes = Encoding.UTF8.GetByteCount(text);
        return new Dictionary<string, double>
        {
            ["bits_per_byte"] = nll / Math.Log(2) / bytes,
            ["bits_per_token"] = nll / Math.Log(2) / scored,
            ["perplexity"] = Math.Exp(nll / scored),
        };
    }

    /// <summary>Sum of log-probabilities of <paramref name="continuation"/> after <paramref name="context"/> (left-truncated to fit).</summary>
    public double LogLikelihood(IReadOnlyList<int> context, IReadOnlyList<int> continuation)
    {
        var all = context.Concat(continuation).ToList();
        var keep = Math.Min(all.Count, model.Config.Context + 1);
        all = all.Skip(all.Count - keep).ToList();
        var first = all.Count - continuation.Count; // index in `all` of the first continuation token
        model.eval();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var input = tensor(all.Take(all.Count - 1).Select(i => (long)i).ToArray(), [1, all.Count - 1]);
        var logProbs = model.forward(input)[0].log_softmax(-1);
        double total = 0;
        for (var i = Math.Max(first, 1); i < all.Count; i++) total += logProbs[i - 1, all[i]].item<float>();
        return total;
    }

    /// <summary>
    /// The tokens before an answer: few-shot examples and the filled prompt, as plain text (ending in the answer
    /// prefix when <paramref name="withAnswerPrefix"/>) or, for chat tasks, as turns of the chat template ending in
    /// an open assistant turn.
    /// </summary>
    internal List<int> PromptIds(EvalTask task, List<JsonObject> examples, JsonObject example, Func<JsonObject, string> answer, bool withAnswerPrefix)
    {
        var shots = examples.Take(task.FewShot);
        if (task.Chat)
        {
            var turns = shots.SelectMany(e => new[] { new ChatMessage("user", TaskLoader.Fill(task.Prompt, e)), new ChatMessage("assistant", answer(e)) })
                .Append(new ChatMessage("user", TaskLoader.Fill(task.Prompt, example)));
            return _chat.Prompt(turns.ToList());
        }
        var prefix = string.Concat(shots.Select(e => TaskLoader.Fill(task.Prompt, e) + task.AnswerPrefix + answer(e) + "\n\n"));
        return tokenizer.Encode(prefix + TaskLoader.Fill(task.Prompt, example) + (withAnswerPrefix ? task.AnswerPrefix : "")).ToList();
    }

    /// <summary>A choice's tokens after the prompt: the answer prefix and text, or for chat tasks the assistant's reply.</summary>
    private IReadOnlyList<int> ChoiceIds(EvalTask task, string choice) =>
        task.Chat ? _chat.Reply(choice) : tokenizer.Encode(task.AnswerPrefix + choice);

    private Dictionary<string, double> MultipleChoice(EvalTask task)
    {
        var examples = TaskLoader.Examples(task);
        string ChoiceText(JsonObject e, int i) => e[task.Choices]!.AsArray()[i]!.ToString();
        string Right(JsonObject e) => ChoiceText(e, (int)e[task.Answer]!);
        var scored = examples.Skip(task.FewShot).Take(task.Limit > 0 ? task.Limit : int.MaxValue).ToList();
        int correct = 0, correctNorm = 0;
        foreach (var example in scored)
        {
            var context = PromptIds(task, examples, example, Right, withAnswerPrefix: false);
            var choices = example[task.Choices]!.AsArray();
            var scores = new List<(double Raw, double Norm)>();
            for (var i = 0; i < choices.Count; i++)
            {
                var text = ChoiceText(example, i);
                var ll = LogLikelihood(context, ChoiceIds(task, text));
                scores.Add((ll, ll / Math.Max(1, Encoding.UTF8.GetByteCount(task.Chat ? text : task.AnswerPrefix + text))));
            }
            var answer = (int)example[task.Answer]!;
            if (scores.IndexOf(scores.MaxBy(s => s.Raw)) == answer) correct++;
            if (scores.IndexOf(scores.MaxBy(s => s.Norm)) == answer) correctNorm++;
        }
        return new Dictionary<string, double>
        {
            ["accuracy"] = (double)correct / scored.Count,
            ["accuracy_norm"] = (double)correctNorm / scored.Count,
            ["examples"] = scored.Count,
        };
    }

    private async Task<Dictionary<string, double>> GenerationAsync(EvalTask task, CancellationToken ct)
    {
        var examples = TaskLoader.Examples(task);
        string Reference(JsonObject e) => e[task.Answer]!.ToString();
        var scored = examples.Skip(task.FewShot).Take(task.Limit > 0 ? task.Limit : int.MaxValue).ToList();
        var totals = task.Scorers.ToDictionary(s => s, _ => 0.0);
        var settings = task.Generation;
        var room = model.Config.Context - settings.MaxTokens;
        if (room < 1) throw new InvalidDataException($"task '{task.Name}': max_tokens {settings.MaxTokens} leaves no room for a prompt in context {model.Config.Context}");
        var sampling = new SamplingOptions { Temperature = settings.Temperature, TopK = settings.TopK, TopP = settings.TopP, MaxNewTokens = settings.MaxTokens };
        // Batches of examples share one KV cache (left-padded prompts, masked).
        foreach (var chunk in scored.Chunk(BatchSize))
        {
            var prompts = chunk.Select(example =>
            {
                var ids = PromptIds(task, examples, example, Reference, withAnswerPrefix: true);
                return (IReadOnlyList<int>)(ids.Count > room ? ids.Skip(ids.Count - room).ToList() : ids);
            }).ToList();
            var ends = new HashSet<int> { tokenizer.EndOfText };
            if (task.Chat) ends.Add(tokenizer.SpecialIds[SpecialTokens.EndOfTurn]);
            var generated = TextGenerator.GenerateBatch(model, prompts, sampling, ends,
                ids => settings.Stop.Any(s => tokenizer.Decode(ids).Contains(s)));
            for (var i = 0; i < chunk.Length; i++)
            {
                var example = chunk[i];
                var output = tokenizer.Decode(generated[i].Where(id => !ends.Contains(id)));
                foreach (var stop in settings.Stop)
                {
                    var at = output.IndexOf(stop, StringComparison.Ordinal);
                    if (at >= 0) output = output[..at];
                }
                var reference = example[task.Answer]!.ToString();
                foreach (var scorer in task.Scorers)
                {
                    totals[scorer] += scorer switch
                    {
                        "exact_match" => Scorers.ExactMatch(output, reference),
                        "char_f1" => Scorers.CharF1(output, reference),
                        "rouge_l" => Scorers.RougeL(output, reference),
                        "judge" => await JudgeAsync(task, TaskLoader.Fill(task.Prompt, example), output, reference, example[task.Aspect]?.ToString() ?? "", ct),
                        _ => 0,
                    };
                }
            }
        }
        var metrics = totals.ToDictionary(kv => kv.Key, kv => kv.Value / scored.Count);
        metrics["examples"] = scored.Count;
        return metrics;
    }

    private async Task<double> JudgeAsync(EvalTask task, string input, string output, string reference, string aspect, CancellationToken ct)
    {
        var client = judge ?? new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        var response = await client.PostAsJsonAsync(task.JudgeUrl, new { input, output, reference, aspect }, ct);
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonObject>(ct);
        var score = (double?)body?["score"] ?? throw new InvalidDataException($"judge '{task.JudgeUrl}' returned no score");
        if (score is < 1 or > 5) throw new InvalidDataException($"judge '{task.JudgeUrl}' returned {score}, outside 1-5");
        return score;
    }
}
