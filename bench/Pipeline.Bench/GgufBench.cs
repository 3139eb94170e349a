using System.Diagnostics;
using System.Text.Json;
using Pipeline.Bpe;
using Pipeline.Model;
using Pipeline.Release;
using static TorchSharp.torch;

namespace Pipeline.Bench;

/// <summary>
/// A checkpoint exported as GGUF f32, f16, q8_0 and q4_0 and run in llama.cpp (tests/interop/llama-cpp.mjs, after
/// `npm ci --omit=optional --prefix tests/interop`): file size and held-out perplexity per type beside our own f32
/// perplexity, and how often llama.cpp's own tokenization of held-out text gives our ids under each pre-tokenizer name
/// llama.cpp knows that is close to ours. Arguments: CHECKPOINT TEXTS (a folder of .txt files: held-out text, each file
/// or .html pages: held-out text, Japanese when its name has ".ja.") OUT.
/// </summary>
public static class GgufBench
{
    // Names from llama.cpp's list (llama-vocab.cpp) whose splits are closest to ours; the default first.
    private static readonly string[] PreTokenizers = [GgufExport.DefaultPreTokenizer, "llama-bpe", "qwen2", "gpt-4o", "smollm", "falcon", "deepseek-llm", "jais", "default"];

    /// <summary>Held-out texts: .txt files, or .html pages extracted as the cleaner extracts them; Japanese when the name has ".ja.".</summary>
    internal static List<(string Language, string Text)> HeldOutTexts(string folder) =>
        Directory.GetFiles(folder).Where(f => f.EndsWith(".txt") || f.EndsWith(".html")).Order(StringComparer.Ordinal)
            .Select(f => (Language: Path.GetFileName(f).Contains(".ja.") ? "ja" : "en",
                          Text: f.EndsWith(".html") ? Cleaner.TextExtractor.Extract(File.ReadAllText(f)).Text : File.ReadAllText(f))).ToList();

    /// <summary>Windows of the model's context over each text's first four contexts' worth of tokens.</summary>
    internal static List<(string Language, List<int> Ids)> Windows(List<(string Language, string Text)> texts, TextTokenizer tokenizer, int context) =>
        texts.Select(t => (t.Language, Ids: tokenizer.Encode(t.Text).Take(context * 4).ToList()))
            .SelectMany(t => t.Ids.Chunk(context).Where(c => c.Length > 1).Select(c => (t.Language, Ids: c.ToList()))).ToList();

    /// <summary>-ln p of every token after each window's first, by our model.</summary>
    internal static List<double> Nll(Gpt model, IEnumerable<(string Language, List<int> Ids)> windows)
    {
        using var _ = no_grad();
        var nll = new List<double>();
        foreach (var w in windows)
        {
            using var logits = model.forward(tensor(w.Ids.Select(i => (long)i).ToArray(), [1, w.Ids.Count]));
            using var logProbs = nn.functional.log_softmax(logits[0].to(ScalarType.Float64), 1);
            for (var t = 0; t + 1 < w.Ids.Count; t++) nll.Add(-logProbs[t, w.Ids[t + 1]].item<double>());
        }
        return nll;
    }

    public static Task RunAsync(string[] args)
    {
        if (args.Length < 3) throw new ArgumentException("usage: gguf CHECKPOINT TEXTS OUT");
        var (checkpoint, textsFolder, outFolder) = (args[0], args[1], args[2]);
        Directory.CreateDirectory(outFolder);
        var (model, info, tokenizer) = Cli.Commands.ModelCommands.Load(checkpoint, null);
        model.eval();
        var texts = HeldOutTexts(textsFolder);
        // Each token's length in bytes, from vocab.json's GPT-2 printable form (one character per byte).
        var vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(tokenizer.Folder, "vocab.json")))!;
        var byteLength = vocab.ToDictionary(kv => kv.Value, kv => kv.Value < tokenizer.Meta.MergeableTokens ? kv.Key.Length : System.Text.Encoding.UTF8.GetByteCount(kv.Key));
        var context = model.Config.Context;
        var windows = Windows(texts, tokenizer, context);
        Console.WriteLine($"{texts.Count} texts, {windows.Count} windows of up to {context} tokens, {windows.Sum(w => w.Ids.Count - 1)} scored tokens");

        var files = new Dictionary<string, string>();
        foreach (var (name, type) in GgufExport.Types)
        {
            files[name] = Path.Combine(outFolder, $"model-{name}.gguf");
            using var stream = File.Create(files[name]);
            GgufExport.Write(model, info, tokenizer, stream, type);
        }
        foreach (var pre in PreTokenizers.Skip(1))
        {
            files["f32 " + pre] = Path.Combine(outFolder, $"model-f32-{pre}.gguf");
            using var stream = File.Create(files["f32 " + pre]);
            GgufExport.Write(model, info, tokenizer, stream, GgmlType.F32, pre);
        }

        var paragraphs = texts.SelectMany(t => t.Text.Split("\n\n").Where(p => p.Trim().Length > 0).Select(p => (t.Language, Text: p))).ToList();
        var runs = new List<object>();
        foreach (var name in GgufExport.Types.Keys) runs.Add(new { model = files[name], texts = windows.Select(w => w.Ids) });
        foreach (var pre in PreTokenizers) runs.Add(new { model = files[pre == GgufExport.DefaultPreTokenizer ? "f32" : "f32 " + pre], tokenize = paragraphs.Select(p => p.Text) });
        var input = Path.Combine(outFolder, "input.json");
        var output = Path.Combine(outFolder, "output.json");
        File.WriteAllText(input, JsonSerializer.Serialize(runs));
        var node = Stopwatch.StartNew();
        // "reuse" as a fourth argument reads llama.cpp's results of an earlier run over the same files.
        if (!(args.Length > 3 && args[3] == "reuse" && File.Exists(output)))
        {
        var start = new ProcessStartInfo("node", [Path.GetFullPath("tests/interop/llama-cpp.mjs"), input, output]) { WorkingDirectory = Path.GetFullPath("tests/interop") };
        using (var process = Process.Start(start)!)
        {
            process.WaitForExit();
            if (process.ExitCode != 0) throw new InvalidOperationException("llama-cpp.mjs failed");
        }
        }
        var results = JsonDocument.Parse(File.ReadAllText(output)).RootElement;

        double Perplexity(IEnumerable<double> nll) => Math.Exp(nll.Average());
        List<double> Ours(string language) => Nll(model, windows.Where(w => w.Language == language));
        List<double> Theirs(int run, string language) =>
            results[run].GetProperty("nll").EnumerateArray().Select((a, i) => (Array: a, windows[i].Language)).Where(x => x.Language == language)
                .SelectMany(x => x.Array.EnumerateArray().Select(v => v.GetDouble())).ToList();

        Console.WriteLine($"| | file (MiB) | ppl en | ppl ja | vs f32 en | vs f32 ja |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        var (oursEn, oursJa) = (Perplexity(Ours("en")), Perplexity(Ours("ja")));
        Console.WriteLine($"| this project, f32 (TorchSharp) | {new FileInfo(Path.Combine(checkpoint, "model.bin")).Length / 1048576.0:F2} | {oursEn:F3} | {oursJa:F3} | | |");
        var f32 = (En: Perplexity(Theirs(0, "en")), Ja: Perplexity(Theirs(0, "ja")));
        var i = 0;
        foreach (var name in GgufExport.Types.Keys)
        {
            var (en, ja) = (Perplexity(Theirs(i, "en")), Perplexity(Theirs(i, "ja")));
            Console.WriteLine($"| llama.cpp, {name} | {new FileInfo(files[name]).Length / 1048576.0:F2} | {en:F3} | {ja:F3} | {en / f32.En - 1:+0.00%;-0.00%;0.00%} | {ja / f32.Ja - 1:+0.00%;-0.00%;0.00%} |");
            i++;
        }

        Console.WriteLine();
        Console.WriteLine("| tokenizer.ggml.pre | paragraphs with our ids, en | ja | tokens in agreement, en | ja |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var pre in PreTokenizers)
        {
            var tokenized = results[i++].GetProperty("tokenized").EnumerateArray().Select(a => a.EnumerateArray().Select(v => v.GetInt32()).ToList()).ToList();
            string Agreement(string language, bool byToken)
            {
                var pairs = paragraphs.Select((p, k) => (p.Language, Ours: tokenizer.Encode(p.Text), Theirs: tokenized[k])).Where(x => x.Language == language).ToList();
                if (!byToken) return $"{(double)pairs.Count(x => x.Ours.SequenceEqual(x.Theirs)) / pairs.Count:P1}";
                // Tokens of ours that llama.cpp also produced at the same byte offset: the share of the text split alike.
                long same = 0, total = 0;
                foreach (var (_, ours, theirs) in pairs)
                {
                    var starts = new HashSet<(int, int)>();
                    var offset = 0;
                    foreach (var id in theirs)
                    {
                        starts.Add((offset, id));
                        offset += byteLength[id];
                    }
                    offset = 0;
                    foreach (var id in ours)
                    {
                        if (starts.Contains((offset, id))) same++;
                        total++;
                        offset += byteLength[id];
                    }
                }
                return $"{(double)same / total:P1}";
            }
            Console.WriteLine($"| {pre} | {Agreement("en", false)} | {Agreement("ja", false)} | {Agreement("en", true)} | {Agreement("ja", true)} |");
        }
        Console.WriteLine($"(llama.cpp: {node.Elapsed.TotalSeconds:F0} s for all runs)");
        return Task.CompletedTask;
    }
}
