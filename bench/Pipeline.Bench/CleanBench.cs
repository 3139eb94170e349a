using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Pipeline.Cleaner;

namespace Pipeline.Bench;

/// <summary>
/// Cleaner throughput on one core (extraction, normalization, language id, every filter, PII masking, exact-dedup
/// hashing) on real pages, and language-identification accuracy on held-out real paragraphs with a confusion table.
/// Arguments: folder of pages (default: the sample site, section-sized pages of the Debian Reference).
/// </summary>
public static class CleanBench
{
    public static Task RunAsync(string[] args)
    {
        var folder = args.Length > 0 ? args[0] : "samples/site";
        var pages = Directory.GetFiles(folder, "*.html", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Select(File.ReadAllText).ToList();
        var cleaner = new DocumentCleaner(new CleanerOptions(), []);
        var bytes = pages.Sum(p => (long)Encoding.UTF8.GetByteCount(p));
        foreach (var p in pages.Take(20)) cleaner.Clean("w", "u", p); // warm-up (JIT, regex construction)
        var watch = Stopwatch.StartNew();
        var rounds = 0;
        var kept = 0;
        while (watch.Elapsed.TotalSeconds < 10 || rounds == 0)
        {
            foreach (var page in pages)
            {
                var outcome = cleaner.Clean("id", "http://x/", page);
                if (outcome.Document is { } d)
                {
                    ExactDedup.HashOf(d.Text);
                    kept++;
                }
            }
            rounds++;
        }
        var seconds = watch.Elapsed.TotalSeconds;
        Console.WriteLine($"clean: {pages.Count} real pages ({bytes / 1e6 / pages.Count * 1000:F1} KB average) x {rounds} rounds on one core: " +
                          $"{bytes * rounds / 1e6 / seconds:F1} MB/s of HTML, {pages.Count * rounds / seconds:F0} documents/s, {kept / rounds} kept per round");

        // Language identification on paragraphs of 200+ characters of the full Debian Reference (en and ja).
        var samples = new List<(string Text, string Label)>();
        foreach (var file in Directory.GetFiles("/usr/share/debian-reference", "*.html"))
        {
            var label = file.EndsWith(".ja.html") ? "ja" : "en";
            foreach (var line in TextExtractor.Extract(File.ReadAllText(file)).Text.Split('\n'))
            {
                var text = TextNormalizer.Normalize(line, true).Trim();
                if (text.Length < 200) continue;
                // The Japanese translation leaves paragraphs in English (only 「cross-reference」 titles translated).
                var outside = Regex.Replace(text, "「[^」]*」|\\([^)]*章[^)]*\\)", "");
                samples.Add((text, label == "ja" && !outside.Any(c => c is >= '\u3040' and <= '\u9FFF') ? "en" : label));
            }
        }
        samples = samples.DistinctBy(s => s.Text).ToList();
        var confusion = new Dictionary<(string, string), int>();
        watch.Restart();
        foreach (var (text, label) in samples)
        {
            var predicted = LanguageIdentifier.Identify(text).Language;
            confusion[(label, predicted)] = confusion.GetValueOrDefault((label, predicted)) + 1;
        }
        var correct = confusion.Where(kv => kv.Key.Item1 == kv.Key.Item2).Sum(kv => kv.Value);
        Console.WriteLine($"language id: {correct}/{samples.Count} = {100.0 * correct / samples.Count:F2}% correct on paragraphs of 200+ characters ({samples.Count / watch.Elapsed.TotalSeconds:F0} paragraphs/s)");
        Console.WriteLine("| true \\ predicted | " + string.Join(" | ", confusion.Keys.Select(k => k.Item2).Distinct().Order()) + " |");
        foreach (var label in confusion.Keys.Select(k => k.Item1).Distinct().Order())
            Console.WriteLine($"| {label} | " + string.Join(" | ", confusion.Keys.Select(k => k.Item2).Distinct().Order().Select(p => confusion.GetValueOrDefault((label, p)).ToString())) + " |");
        foreach (var ((label, predicted), _) in confusion.Where(kv => kv.Key.Item1 != kv.Key.Item2))
            foreach (var miss in samples.Where(s => s.Label == label && LanguageIdentifier.Identify(s.Text).Language == predicted).Take(3))
                Console.WriteLine($"  missed ({label} -> {predicted}): {miss.Text[..Math.Min(120, miss.Text.Length)]}");
        return Task.CompletedTask;
    }
}
