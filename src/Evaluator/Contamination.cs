using System.IO.Hashing;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Pipeline.Evaluator.Tasks;

namespace Pipeline.Evaluator;

/// <summary>How many of a task's examples overlap the training corpus.</summary>
public sealed record TaskContamination(string Task, int Examples, int Contaminated)
{
    public double Fraction => Examples == 0 ? 0 : (double)Contaminated / Examples;
}

/// <summary>
/// N-gram overlap between evaluation examples and a training corpus, as lm-evaluation-harness's decontamination
/// measures it (Brown et al. 2020, GPT-3 appendix C): an example is contaminated when any of its n-grams occurs in the
/// corpus. English uses lm-eval's 13-grams of words (lower-cased, punctuation removed); Japanese, which has no word
/// boundaries, 50-character windows (whitespace removed), long enough that shared boilerplate phrases do not count.
/// An example's text is its filled prompt and its answer (the right choice); a perplexity task's examples are the
/// documents it scores (<see cref="TaskRunner.PerplexityDocuments"/>). An example shorter than one n-gram but of at least 20 characters is looked for whole.
/// </summary>
public static partial class Contamination
{
    public const int Words = 13;
    public const int Characters = 50;

    /// <summary>Measures over a whole corpus at once (tests, small corpora); see <see cref="Index"/> for streaming.</summary>
    public static List<TaskContamination> Measure(IReadOnlyList<EvalTask> tasks, IEnumerable<string> corpus)
    {
        var index = new Index(tasks);
        foreach (var document in corpus) index.Check(document);
        return index.Result();
    }

    /// <summary>
    /// The tasks' n-grams, against which corpus documents are checked one at a time: memory is bounded by the tasks,
    /// not the corpus. <see cref="Check"/> is not thread-safe.
    /// </summary>
    public sealed class Index
    {
        private readonly IReadOnlyList<EvalTask> _tasks;
        // n-gram hash -> the (task, example) pairs that contain it
        private readonly Dictionary<ulong, List<(int Task, int Example)>> _owners = [];
        // Examples shorter than one n-gram (a short Japanese sentence) are looked for whole, as a substring.
        private readonly List<(string Text, int Task, int Example)> _whole = [];
        private readonly List<int> _examples = [];
        private readonly HashSet<(int, int)> _contaminated = [];

        public Index(IReadOnlyList<EvalTask> tasks)
        {
            _tasks = tasks;
            for (var t = 0; t < tasks.Count; t++)
            {
                var texts = Texts(tasks[t]);
                _examples.Add(texts.Count);
                for (var e = 0; e < texts.Count; e++)
                {
                    var grams = Grams(texts[e]).Distinct().ToList();
                    if (grams.Count == 0 && Compact(texts[e]) is { Length: >= MinimumWhole } compact) _whole.Add((compact, t, e));
                    foreach (var gram in grams)
                    {
                        if (!_owners.TryGetValue(gram, out var list)) _owners[gram] = list = [];
                        list.Add((t, e));
                    }
                }
            }
        }

        /// <summary>Records the examples this corpus document contains; true when it contains any.</summary>
        public bool Check(string document)
        {
            var found = false;
            foreach (var gram in Grams(document))
            {
                if (!_owners.TryGetValue(gram, out var list)) continue;
                _contaminated.UnionWith(list);
                found = true;
            }
            if (_whole.Count == 0) return found;
            var compact = Compact(document);
            foreach (var (text, task, example) in _whole)
            {
                if (!compact.Contains(text, StringComparison.Ordinal)) continue;
                _contaminated.Add((task, example));
                found = true;
            }
            return found;
        }

        public List<TaskContamination> Result() =>
            _tasks.Select((task, t) => new TaskContamination(task.Name, _examples[t], _contaminated.Count(c => c.Item1 == t))).ToList();
    }

    /// <summary>The hashed n-grams of a text: 13-word grams and 50-character windows, whichever the text is long enough for.</summary>
    public static IEnumerable<ulong> Grams(string text)
    {
        var normalized = text.Normalize(NormalizationForm.FormKC).ToLowerInvariant();
        var words = NonWord().Replace(normalized, " ").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i + Words <= words.Length; i++)
            yield return Hash("w" + string.Join(' ', words, i, Words));
        // Character windows only where there are non-Latin letters (Japanese): English is covered by words.
        var compact = Compact(text);
        if (!compact.Any(c => c >= '\u3040')) yield break;
        for (var i = 0; i + Characters <= compact.Length; i++)
            yield return Hash("c" + compact.Substring(i, Characters));
    }

    /// <summary>Shorter examples are not looked for at all: a phrase of a few characters is not evidence.</summary>
    public const int MinimumWhole = 20;

    private static string Compact(string text) =>
        new(text.Normalize(NormalizationForm.FormKC).ToLowerInvariant().Where(c => !char.IsWhiteSpace(c)).ToArray());

    private static List<string> Texts(EvalTask task)
    {
        if (task.Type == "perplexity")
            return TaskRunner.PerplexityDocuments(File.ReadAllText(TaskLoader.DataPath(task))).ToList();
        return TaskLoader.Examples(task).Select(e => TaskLoader.Fill(task.Prompt, e) + " " + Answer(task, e)).ToList();
    }

    private static string Answer(EvalTask task, JsonObject example) =>
        task.Type == "multiple_choice" && example[task.Choices] is JsonArray choices && example[task.Answer] is JsonValue index && index.TryGetValue<int>(out var i) && i >= 0 && i < choices.Count
            ? choices[i]!.ToString()
            : example[task.Answer]?.ToString() ?? "";

    private static ulong Hash(string gram) => XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(gram));

    // lm-eval's normalization for 13-grams: lower case, punctuation removed.
    [GeneratedRegex(@"[^\p{L}\p{N}]+")]
    private static partial Regex NonWord();
}
