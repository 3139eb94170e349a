using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Alignment;
using Pipeline.Model;
using static TorchSharp.torch;

namespace Pipeline.Bench;

/// <summary>
/// #29's reward-model figure: on sentences of held-out documentation, the chosen reply is the sentence and the
/// rejected one the same words shuffled (Japanese, which has no spaces, in runs of one script: kanji, hiragana,
/// katakana, Latin letters and digits, punctuation). A reward model trained from the checkpoint (`pipeline align
/// reward`'s job) on the pairs of 80 % of the documents is scored on those of the other 20 %, per language; the same
/// from a randomly initialized model of the same shape shows what the pretraining contributes.
/// Arguments: CHECKPOINT TEXTS OUT [steps].
/// </summary>
public static partial class RewardBench
{
    public static Task RunAsync(string[] args)
    {
        if (args.Length < 3) throw new ArgumentException("usage: reward CHECKPOINT TEXTS OUT [steps]");
        var (checkpoint, outFolder) = (args[0], Directory.CreateDirectory(args[2]).FullName);
        var steps = args.Length > 3 ? int.Parse(args[3]) : 300;
        var documents = GgufBench.HeldOutTexts(args[1]);
        var (train, test) = Pairs(documents);
        var trainFile = Path.Combine(outFolder, "train.jsonl");
        File.WriteAllLines(trainFile, train.Select(p => JsonSerializer.Serialize(p)));
        Console.WriteLine($"{documents.Count} documents: {train.Count} training pairs; unseen documents: {test.Count(t => t.Language == "en")} en, {test.Count(t => t.Language == "ja")} ja pairs");
        Console.WriteLine("| reward model from | held-out pairs (same documents) | unseen documents, en | ja | margin (unseen) | time | s/step |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (var pretrained in new[] { true, false })
        {
            var (model, info, tokenizer) = Cli.Commands.ModelCommands.Load(checkpoint, null);
            var baseFolder = checkpoint;
            if (!pretrained)
            {
                // The same shape, its weights as training starts them.
                manual_seed(1);
                using var fresh = new Gpt(model.Config);
                baseFolder = Checkpoints.Save(Path.Combine(outFolder, "random-base"), fresh, null, info with { RunName = "random-base" }, keepLast: 1);
            }
            model.Dispose();
            var config = new AlignmentConfig { Method = "reward", Steps = steps, BatchSize = 16, LearningRate = 3e-4, WarmupSteps = steps / 10, LogEvery = 50 };
            var clock = Stopwatch.StartNew();
            var result = new AlignmentJob(NullLogger.Instance).Run(baseFolder, tokenizer, trainFile, config,
                Path.Combine(outFolder, pretrained ? "rm" : "rm-random"), pretrained ? "rm" : "rm-random");
            var seconds = clock.Elapsed.TotalSeconds;
            var (rewardModel, _) = Checkpoints.Load(result.Checkpoint, CPU);
            var figures = new Dictionary<string, (double Accuracy, double Margin)>();
            foreach (var language in new[] { "en", "ja" })
            {
                var file = Path.Combine(outFolder, $"test-{language}.jsonl");
                File.WriteAllLines(file, test.Where(t => t.Language == language).Select(t => JsonSerializer.Serialize(t.Pair)));
                var scores = Path.Combine(outFolder, $"scores-{language}.jsonl");
                var summary = RewardScoring.Score(rewardModel, tokenizer, AlignmentData.ReadScoring(file, []), scores);
                var margin = File.ReadLines(scores).Average(l => JsonDocument.Parse(l).RootElement.GetProperty("margin").GetDouble());
                figures[language] = (summary.Accuracy!.Value, margin);
            }
            var held = result.Report.HeldOut!;
            Console.WriteLine($"| {(pretrained ? Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(checkpoint))) + " (pretrained)" : "random weights, same shape")} | " +
                              $"{held.Accuracy:P1} of {held.Pairs} | {figures["en"].Accuracy:P1} | {figures["ja"].Accuracy:P1} | " +
                              $"{figures["en"].Margin:F2} / {figures["ja"].Margin:F2} | {seconds:F0} s | {seconds / steps:F2} |");
            rewardModel.Dispose();
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// Fluent-against-shuffled pairs from documents' sentences: those of every fifth document apart (unseen), with
    /// their language. Each pair is {prompt, chosen, rejected}.
    /// </summary>
    internal static (List<object> Train, List<(string Language, object Pair)> Test) Pairs(List<(string Language, string Text)> documents)
    {
        var random = new Random(1);
        var train = new List<object>();
        var test = new List<(string Language, object Pair)>();
        for (var d = 0; d < documents.Count; d++)
        {
            var (language, text) = documents[d];
            foreach (var sentence in Sentences(language, text))
            {
                var words = Words(language, sentence);
                var shuffled = words.OrderBy(_ => random.Next()).ToList();
                if (shuffled.SequenceEqual(words)) continue;
                var pair = new
                {
                    prompt = language == "ja" ? "一文を書いてください。" : "Write one sentence.",
                    chosen = sentence,
                    rejected = string.Join(language == "ja" ? "" : " ", shuffled),
                };
                if (d % 5 == 4) test.Add((language, pair));
                else train.Add(pair);
            }
        }
        return (train, test);
    }

    /// <summary>Sentences of 6 to 40 words (English) or 15 to 80 characters (Japanese), whole lines of prose only.</summary>
    private static IEnumerable<string> Sentences(string language, string text) =>
        text.Split('\n').SelectMany(line => language == "ja"
                ? JapaneseSentence().Matches(line).Select(m => m.Value.Trim())
                : EnglishSentence().Matches(line).Select(m => m.Value.Trim()))
            .Where(s => language == "ja" ? s.Length is >= 15 and <= 80 : s.Split(' ').Length is >= 6 and <= 40)
            .Distinct();

    private static List<string> Words(string language, string sentence) =>
        language == "ja" ? ScriptRun().Matches(sentence).Select(m => m.Value).ToList() : [.. sentence.Split(' ', StringSplitOptions.RemoveEmptyEntries)];

    [GeneratedRegex(@"[^。！？]+[。！？]")]
    private static partial Regex JapaneseSentence();

    [GeneratedRegex(@"[A-Z][^.!?]+[.!?](?=\s|$)")]
    private static partial Regex EnglishSentence();

    [GeneratedRegex(@"\p{IsCJKUnifiedIdeographs}+|\p{IsHiragana}+|\p{IsKatakana}+|[A-Za-z0-9]+|\s+|.")]
    private static partial Regex ScriptRun();
}
