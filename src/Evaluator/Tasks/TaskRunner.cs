using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Pipeline.Model;
using Pipeline.Bpe;
using static TorchSharp.torch;
using Pipeline.Runtime;
namespace Pipeline.Evaluator.Tasks;

/// <summary>Runs one task on one model; returns the metrics (the ledger stores them per checkpoint, task and version).</summary>
public sealed class TaskRunner(Gpt model, TextTokenizer tokenizer, HttpClient? judge = null)
{
    private readonly ChatTemplate _chat = new(tokenizer);

    /// <summary>Generation examples decoded together (one KV cache per batch).</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>
    /// Each metric's per-example values of the last task run (a perplexity task's per-document "nll" and "bytes"), for
    /// comparisons that pair the examples of two models (an ablation's paired bootstrap).
    /// </summary>
    public Dictionary<string, IReadOnlyList<double>> Samples { get; } = [];

    public async Task<IReadOnlyDictionary<string, double>> RunAsync(EvalTask task, CancellationToken ct = default)
    {
        Samples.Clear();
        return await RunTaskAsync(task, ct);
    }

    private async Task<IReadOnlyDictionary<string, double>> RunTaskAsync(EvalTask task, CancellationToken ct) => task.Type switch
    {
        "perplexity" => Perplexity(File.ReadAllText(TaskLoader.DataPath(task))),
        "multiple_choice" => MultipleChoice(task),
        "generation" => await GenerationAsync(task, ct),
        _ => throw new InvalidDataException($"task '{task.Name}': unknown type '{task.Type}'"),
    };

    /// <summary>
    /// lm-eval's rolling log-likelihood metrics (<c>loglikelihood_rolling</c>) of a text's documents: every token of a
    /// document is scored, the first after the end-of-text token that precedes every document in training (lm-eval's
    /// prefix token), in windows of the model's context, each with the tokens before it as context
    /// (<see cref="RollingWindows"/>). <c>word_perplexity</c> is exp(NLL / words), <c>byte_perplexity</c>
    /// exp(NLL / UTF-8 bytes), <c>bits_per_byte</c> NLL / bytes / ln 2, with words (<c>re.split(r"\s+")</c>) and bytes
    /// counted once per document on its original text; also <c>token_perplexity</c> and <c>bits_per_token</c>
    /// (tokenizer-dependent). Standard errors by bootstrap over the documents (1,000 resamples, fixed seed).
    /// </summary>
    public Dictionary<string, double> Perplexity(string text)
    {
        var documents = PerplexityDocuments(text);
        if (documents.Count == 0) throw new InvalidDataException("the text is empty: nothing to score");
        model.eval();
        using var _ = no_grad();
        var scored = new List<(double Nll, long Tokens, long Bytes, long Words)>();
        foreach (var document in documents)
        {
            var ids = tokenizer.Encode(document);
            var nll = 0.0;
            foreach (var (context, continuation) in RollingWindows(ids, tokenizer.EndOfText, model.Config.Context))
                nll -= LogLikelihood(context, continuation);
            scored.Add((nll, ids.Count, Encoding.UTF8.GetByteCount(document), Words(document)));
        }
        // A perplexity too large for a double is left out, with its standard error: word_perplexity of text without
        // spaces (a Japanese paragraph is one "word") overflows exp() for a model that is not yet trained.
        Samples["nll"] = scored.Select(s => s.Nll).ToList();
        Samples["bytes"] = scored.Select(s => (double)s.Bytes).ToList();
        var metrics = RollingMetrics(scored).Where(m => double.IsFinite(m.Value)).ToDictionary();
        var random = new Random(1234);
        var samples = Enumerable.Range(0, 1000).Select(_ => RollingMetrics(scored.Select(__ => scored[random.Next(scored.Count)]).ToList())).ToList();
        foreach (var name in metrics.Keys.ToList())
        {
            var values = samples.Select(m => m[name]).ToList();
            if (!values.All(double.IsFinite)) continue;
            var mean = values.Average();
            metrics[name + StderrSuffix] = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1));
        }
        return metrics;
    }

    /// <summary>
    /// The documents of a perplexity task's text: paragraphs separated by blank lines, or, in a text without blank
    /// lines, its lines (one paragraph per line); empty ones are skipped, and the text's final line break is not part of its last document. Each is scored on its own, as lm-eval scores
    /// each document of a corpus.
    /// </summary>
    public static IReadOnlyList<string> PerplexityDocuments(string text)
    {
        text = text.Replace("\r\n", "\n", StringComparison.Ordinal);
        var parts = Regex.IsMatch(text, @"\n[ \t]*\n") ? Regex.Split(text, @"\n(?:[ \t]*\n)+") : text.Split('\n');
        // The file's last line break ends the text, not its last document.
        return parts.Where(p => !string.IsNullOrWhiteSpace(p)).Select(p => p.TrimEnd('\n')).ToList();
    }

    /// <summary>
    /// lm-eval's <c>get_rolling_token_windows</c> with a context of one token, made disjoint: the first window predicts
    /// the first <paramref name="maxLength"/> tokens after <paramref name="prefix"/>; each later one the next
    /// <paramref name="maxLength"/> (or what is left), read with as many of the tokens before them as fit. Returns
    /// (context, continuation) pairs whose continuations cover every token once.
    /// </summary>
    public static IEnumerable<(List<int> Context, List<int> Continuation)> RollingWindows(IReadOnlyList<int> tokens, int prefix, int maxLength)
    {
        if (tokens.Count == 0) yield break;
        var first = Math.Min(maxLength, tokens.Count);
        yield return ([prefix], tokens.Take(first).ToList());
        for (var predicted = first; predicted < tokens.Count;)
        {
            var length = Math.Min(tokens.Count - predicted, maxLength);
            var end = predicted + length;
            // The window's input is tokens[end - maxLength - 1, end - 1): what precedes the predicted tokens is context.
            var start = Math.Max(0, end - maxLength - 1);
            yield return (tokens.Skip(start).Take(end - length - start).ToList(), tokens.Skip(end - length).Take(length).ToList());
            predicted = end;
        }
    }

    /// <summary>The suffix of a metric's standard error in the ledger and reports.</summary>
    public const string StderrSuffix = Pipeline.Runtime.EvalMetrics.StderrSuffix;

    /// <summary>A multiple-choice task's expected accuracy when choosing at random (the mean of 1 / choices).</summary>
    public const string ChanceMetric = Pipeline.Runtime.EvalMetrics.Chance;

    private static Dictionary<string, double> RollingMetrics(IReadOnlyList<(double Nll, long Tokens, long Bytes, long Words)> windows)
    {
        var nll = windows.Sum(w => w.Nll);
        long tokens = windows.Sum(w => w.Tokens), bytes = Math.Max(1, windows.Sum(w => w.Bytes)), words = Math.Max(1, windows.Sum(w => w.Words));
        return new Dictionary<string, double>
        {
            ["word_perplexity"] = Math.Exp(nll / words),
            ["byte_perplexity"] = Math.Exp(nll / bytes),
            ["bits_per_byte"] = nll / bytes / Math.Log(2),
            ["token_perplexity"] = Math.Exp(nll / tokens),
            ["bits_per_token"] = nll / tokens / Math.Log(2),
        };
    }

    // lm-eval counts words as re.split(r"\s+", text).
    private static long Words(string text) => Regex.Split(text, @"\s+").Length;

    /// <summary>The model's device: every input tensor is created there.</summary>
    private Device Device => model.parameters().First().device;

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
        var input = tensor(all.Take(all.Count - 1).Select(i => (long)i).ToArray(), [1, all.Count - 1], device: Device);
        // Position i - 1 predicts token i: only the continuation's tokens are scored.
        var labels = tensor(Enumerable.Range(1, all.Count - 1).Select(i => i >= first ? (long)all[i] : LogProbs.Ignore).ToArray(), [1, all.Count - 1], device: Device);
        return LogProbs.OfLabels(model, input, labels).cpu().item<double>();
    }

    /// <summary>
    /// lm-eval's <c>_encode_pair</c>: whitespace at the end of the context moves to the continuation, the two are
    /// tokenized together, and the continuation is what follows the context's own tokens. Tokenizing them apart
    /// would let a merge across the boundary (a space, a particle) disagree with how the text is really tokenized.
    /// </summary>
    public (List<int> Context, List<int> Continuation) EncodePair(string context, string continuation)
    {
        var spaces = context.Length - context.TrimEnd().Length;
        if (spaces > 0)
        {
            continuation = context[^spaces..] + continuation;
            context = context[..^spaces];
        }
        var whole = tokenizer.Encode(context + continuation).ToList();
        var contextIds = tokenizer.Encode(context).ToList();
        return (contextIds, whole.Skip(contextIds.Count).ToList());
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
        return tokenizer.Encode(PromptText(task, examples, example, answer, withAnswerPrefix)).ToList();
    }

    /// <summary>The prompt of a plain-text task: few-shot examples separated by a blank line, then the filled prompt.</summary>
    internal static string PromptText(EvalTask task, List<JsonObject> examples, JsonObject example, Func<JsonObject, string> answer, bool withAnswerPrefix)
    {
        var prefix = string.Concat(examples.Take(task.FewShot).Select(e => TaskLoader.Fill(task.Prompt, e) + task.AnswerPrefix + answer(e) + task.FewShotDelimiter));
        return task.Description + prefix + TaskLoader.Fill(task.Prompt, example) + (withAnswerPrefix ? task.AnswerPrefix : "");
    }

    /// <summary>
    /// lm-eval's multiple choice: the log-likelihood of each choice after the prompt (context and continuation
    /// tokenized together, <see cref="EncodePair"/>); <c>acc</c> picks the highest, <c>acc_norm</c> the highest per
    /// character of the choice (lm-eval: <c>len(choice)</c>). Each with lm-eval's standard error of the mean. For chat
    /// tasks the choice is the assistant's reply, inserted after the prompt's special tokens by id.
    /// </summary>
    private Dictionary<string, double> MultipleChoice(EvalTask task)
    {
        var examples = TaskLoader.Examples(task);
        string ChoiceText(JsonObject e, int i) => e[task.Choices]!.AsArray()[i]!.ToString();
        string Right(JsonObject e) => ChoiceText(e, (int)e[task.Answer]!);
        var scored = examples.Skip(task.FewShot).Take(task.Limit > 0 ? task.Limit : int.MaxValue).ToList();
        var acc = new List<double>();
        var accNorm = new List<double>();
        foreach (var example in scored)
        {
            var choices = example[task.Choices]!.AsArray();
            var scores = new List<(double Raw, double Norm)>();
            for (var i = 0; i < choices.Count; i++)
            {
                var text = ChoiceText(example, i);
                var (context, continuation) = task.Chat
                    ? (PromptIds(task, examples, example, Right, withAnswerPrefix: false), _chat.Reply(text))
                    : EncodePair(PromptText(task, examples, example, Right, withAnswerPrefix: false), task.AnswerPrefix + text);
                var ll = LogLikelihood(context, continuation);
                scores.Add((ll, ll / Math.Max(1, CodePoints(text))));
            }
            var answer = (int)example[task.Answer]!;
            acc.Add(scores.IndexOf(scores.MaxBy(s => s.Raw)) == answer ? 1 : 0);
            accNorm.Add(scores.IndexOf(scores.MaxBy(s => s.Norm)) == answer ? 1 : 0);
        }
        var metrics = new Dictionary<string, double> { ["examples"] = scored.Count };
        // What picking a choice at random scores: the baseline a report compares acc with.
        if (scored.Count > 0) metrics[ChanceMetric] = scored.Average(e => 1.0 / Math.Max(1, e[task.Choices]!.AsArray().Count));
        Add(metrics, "acc", acc);
        Add(metrics, "acc_norm", accNorm);
        return metrics;
    }

    /// <summary>A metric's mean over examples and, from two examples on, its standard error.</summary>
    private void Add(Dictionary<string, double> metrics, string name, IReadOnlyList<double> perExample)
    {
        Samples[name] = perExample;
        metrics[name] = perExample.Count == 0 ? double.NaN : perExample.Average();
        if (Scorers.MeanStderr(perExample) is { } stderr) metrics[name + StderrSuffix] = stderr;
    }

    private static int CodePoints(string text) => text.EnumerateRunes().Count();

    /// <summary>
    /// Generation: greedy or sampled continuations until a stop string, scored against the reference. As in lm-eval
    /// (<c>until</c>), the output is cut before the first stop string; the reference is compared as written
    /// (llm-jp-eval), unless the task asks for its trailing stop string to be cut too.
    /// </summary>
    private async Task<Dictionary<string, double>> GenerationAsync(EvalTask task, CancellationToken ct)
    {
        var unknown = task.Scorers.Where(s => !Scorers.Generation.Contains(s)).ToList();
        if (unknown.Count > 0)
            throw new InvalidDataException($"task '{task.Name}': unknown metric {string.Join(", ", unknown.Select(u => $"'{u}'"))} (known: {string.Join(", ", Scorers.Generation)}" +
                (unknown.Contains("rouge_l") ? "; rouge_l was a character LCS F1 and is now char_lcs_f1" : "") + ")");
        var examples = TaskLoader.Examples(task);
        string Reference(JsonObject e) => e[task.Answer]!.ToString();
        var scored = examples.Skip(task.FewShot).Take(task.Limit > 0 ? task.Limit : int.MaxValue).ToList();
        var perExample = task.Scorers.ToDictionary(s => s, _ => new List<double>());
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
                var (output, reference) = AtStop(tokenizer.Decode(generated[i].Where(id => !ends.Contains(id))), example[task.Answer]!.ToString(), settings.Stop,
                    settings.StripStopFromReference);
                foreach (var scorer in task.Scorers)
                {
                    perExample[scorer].Add(scorer switch
                    {
                        "exact_match" => Scorers.ExactMatch(output, reference),
                        "char_f1" => Scorers.CharF1(output, reference),
                        "set_f1" => Scorers.SetF1(output, reference),
                        "jsquad_char_f1" => Scorers.JsquadCharF1(output, reference),
                        "char_lcs_f1" => Scorers.CharLcsF1(output, reference),
                        _ => await JudgeAsync(task, TaskLoader.Fill(task.Prompt, example), output, reference, example[task.Aspect]?.ToString() ?? "", ct),
                    });
                }
            }
        }
        var metrics = new Dictionary<string, double> { ["examples"] = scored.Count };
        foreach (var (name, values) in perExample) Add(metrics, name, values);
        return metrics;
    }

    /// <summary>
    /// The output up to the first of the stop strings (lm-eval's <c>until</c>), and the reference as written (as
    /// llm-jp-eval and lm-eval compare it), or, with <paramref name="stripReference"/>, without a stop string it ends with.
    /// </summary>
    public static (string Output, string Reference) AtStop(string output, string reference, IReadOnlyList<string> stops, bool stripReference = false)
    {
        foreach (var stop in stops.Where(s => s.Length > 0))
        {
            var at = output.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0) output = output[..at];
            if (stripReference && reference.EndsWith(stop, StringComparison.Ordinal)) reference = reference[..^stop.Length];
        }
        return (output, reference);
    }

    private async Task<double> JudgeAsync(EvalTask task, string input, string output, string reference, string aspect, CancellationToken ct)
    {
        var client = judge ?? new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        var response = await client.PostAsJsonAsync(task.JudgeUrl, new { input, output, reference, aspect, rubric = task.Rubric }, ct);
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadFromJsonAsync<JsonObject>(ct);
        var score = (double?)body?["score"] ?? throw new InvalidDataException($"judge '{task.JudgeUrl}' returned no score");
        if (score is < 1 or > 5) throw new InvalidDataException($"judge '{task.JudgeUrl}' returned {score}, outside 1-5");
        return score;
    }
}
