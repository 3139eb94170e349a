using System.Diagnostics;
using System.Text.RegularExpressions;
using Pipeline.Contracts;
using Pipeline.Contracts.Rows;
using Pipeline.Dedup;

namespace Pipeline.Bench;

/// <summary>
/// Semantic dedup (#28.3) on real documents of about 2 KB (bench/build-corpus.py) with paraphrased copies planted:
/// each copy is its original changed by two of ten kinds of edit, as paraphrases and re-published pages differ
/// (sentences reordered, words dropped, words replaced, sentences from another document added, the end cut, boilerplate
/// around it, case and punctuation, paragraphs re-wrapped, Japanese particles swapped, characters dropped). A planted
/// pair is caught when one of the two is removed; every other removal counts against the rest of the corpus.
/// Arguments: data folder, documents, planted copies, ε values (comma-separated), and optionally a checkpoint and its
/// tokenizer folder to embed with the model's mean last hidden states instead of hashed n-grams.
/// </summary>
public static class SemanticDedupBench
{
    private static readonly string[] Kinds =
        ["reorder", "drop words", "replace words", "add sentences", "cut end", "boilerplate", "case and punctuation", "rewrap", "particles", "drop characters"];

    public static Task RunAsync(string[] args)
    {
        var data = args.Length > 0 ? args[0] : "bench/data";
        var count = args.Length > 1 ? int.Parse(args[1]) : 4000;
        var planted = args.Length > 2 ? int.Parse(args[2]) : 400;
        var epsilons = (args.Length > 3 ? args[3] : "0.1,0.15,0.2,0.25,0.3").Split(',').Select(e => double.Parse(e, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        var bases = DedupBench.Documents(File.ReadAllLines(Path.Combine(data, "corpus.txt"))).Take(count).ToList();
        var random = new Random(28);
        var words = bases.SelectMany(d => d.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(w => w.Length > 2).Distinct().Take(50_000).ToList();
        var copies = new List<(CleanDocument Copy, string Original, string Kinds)>();
        foreach (var original in bases.OrderBy(_ => random.Next()).Take(planted))
        {
            var kinds = Enumerable.Range(0, Kinds.Length).OrderBy(_ => random.Next()).Take(2).ToList();
            var text = kinds.Aggregate(original.Text, (t, k) => Paraphrase(t, k, random, words, bases));
            copies.Add((new CleanDocument { Id = "copy-" + original.Id, Text = text, Language = original.Language }, original.Id, string.Join(" + ", kinds.Select(k => Kinds[k]))));
        }
        var corpus = bases.Concat(copies.Select(c => c.Copy)).ToList();
        Console.WriteLine($"semantic dedup: {bases.Count:N0} real documents of ~2 KB ({bases.Count(d => d.Language == "ja"):N0} Japanese), {copies.Count} paraphrased copies planted");

        var clock = Stopwatch.StartNew();
        var settings = new SemanticDedupSettings();
        using var model = args.Length > 5 ? new CheckpointEmbedding(args[4], Bpe.TextTokenizer.Load(args[5])) : null;
        Func<string, float[]> embed = model is null ? TextEmbedding.Embed : model.Embed;
        Console.WriteLine($"embedding: {model?.Name ?? EmbeddingSource.Hashed}");
        var embedded = corpus.Select(d => (d.Id, embed(d.Text))).ToList();
        var embedSeconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"embeddings: {corpus.Count / embedSeconds:N0} documents/s on one core ({corpus.Sum(d => (long)d.Text.Length) / embedSeconds / 1e6:F1} M characters/s)");

        var planted_ = copies.ToDictionary(c => c.Copy.Id, c => c.Original);
        var inPair = copies.Select(c => c.Original).Concat(copies.Select(c => c.Copy.Id)).ToHashSet();
        Console.WriteLine("| ε | planted copies caught | rest removed | clusters | seconds (k-means + decisions) |");
        Console.WriteLine("|---:|---:|---:|---:|---:|");
        Dictionary<string, (int Caught, int All)>? byKind = null;
        foreach (var epsilon in epsilons)
        {
            clock.Restart();
            var clusters = SemanticDeduplicator.Run(embedded, settings with { Epsilon = epsilon });
            var removed = clusters.SelectMany(c => c.Removed).Select(r => r.Id).ToHashSet();
            var caught = copies.Count(c => removed.Contains(c.Copy.Id) || removed.Contains(c.Original));
            var rest = corpus.Count(d => !inPair.Contains(d.Id));
            var restRemoved = corpus.Count(d => !inPair.Contains(d.Id) && removed.Contains(d.Id));
            Console.WriteLine($"| {epsilon} | {caught / (double)copies.Count:P1} ({caught}/{copies.Count}) | {restRemoved / (double)rest:P2} ({restRemoved}/{rest}) | {clusters.Count} | {clock.Elapsed.TotalSeconds:F1} |");
            if (epsilon == settings.Epsilon)
                byKind = copies.GroupBy(c => c.Kinds.Split(" + ")).SelectMany(g => g.Key.Select(k => (k, g))).GroupBy(x => x.k)
                    .ToDictionary(g => g.Key, g => (g.SelectMany(x => x.g).Count(c => removed.Contains(c.Copy.Id) || removed.Contains(c.Original)), g.SelectMany(x => x.g).Count()));
        }
        if (byKind is not null)
        {
            Console.WriteLine($"\nAt the default ε {settings.Epsilon}, by kind of edit (each copy has two):\n\n| edit | copies | caught |\n|---|---:|---:|");
            foreach (var kind in Kinds.Where(byKind.ContainsKey))
                Console.WriteLine($"| {kind} | {byKind[kind].All} | {byKind[kind].Caught / (double)byKind[kind].All:P0} |");
        }
        return Task.CompletedTask;
    }

    private static readonly Regex Sentence = new(@"(?<=[.!?。！？])\s*", RegexOptions.Compiled);

    private static string Paraphrase(string text, int kind, Random random, List<string> words, List<CleanDocument> others)
    {
        var sentences = Sentence.Split(text).Where(s => s.Length > 0).ToList();
        switch (Kinds[kind])
        {
            case "reorder":
                return string.Join(" ", sentences.OrderBy(_ => random.Next()));
            case "drop words":
                return string.Join(' ', text.Split(' ').Where(_ => random.NextDouble() > 0.15));
            case "replace words":
                return string.Join(' ', text.Split(' ').Select(w => random.NextDouble() < 0.15 ? words[random.Next(words.Count)] : w));
            case "add sentences":
                var other = Sentence.Split(others[random.Next(others.Count)].Text).Where(s => s.Length > 0).Take(Math.Max(1, sentences.Count / 5));
                return string.Join(" ", sentences.Concat(other));
            case "cut end":
                return text[..(int)(text.Length * 0.7)];
            case "boilerplate":
                return "Home | Docs | Download | Support\nShare this page: Twitter Facebook\n" + text + "\nCopyright © 2026 · Privacy · Terms · Contact us";
            case "case and punctuation":
                return Regex.Replace(text.ToUpperInvariant(), @"[,.;:。、]", m => m.Value switch { "," => ";", "." => "!", "。" => "！", "、" => "，", _ => "," });
            case "rewrap":
                return Regex.Replace(text, @"\s+", _ => random.Next(3) == 0 ? "\n" : " ");
            case "particles":
                return Regex.Replace(text, "[はがをに]", m => random.NextDouble() < 0.5 ? m.Value : m.Value switch { "は" => "が", "が" => "は", "を" => "に", _ => "を" });
            default: // drop characters
                return new string(text.Where(_ => random.NextDouble() > 0.1).ToArray());
        }
    }
}
