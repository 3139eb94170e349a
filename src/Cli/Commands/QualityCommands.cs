using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Cleaner;
using Pipeline.Cleaner.Quality;
using Pipeline.Contracts.Rows;
using Pipeline.Storage;
using Spectre.Console;

namespace Pipeline.Cli.Commands;

/// <summary>`pipeline quality train` and `pipeline quality score`: a trained quality classifier (#28.2).</summary>
public static class QualityCommands
{
    private const string InputKinds = "JSONL files with a \"text\" field (and an optional \"id\"), HTML pages, clean shards (.parquet), or folders of them";

    public static Command Create()
    {
        var positive = new Option<string[]>("--positive") { Description = $"Documents of the kind to keep (a reference corpus): {InputKinds}", Required = true, AllowMultipleArgumentsPerToken = true };
        var negative = new Option<string[]>("--negative") { Description = $"Documents of the kind to remove (a sample of the crawl): {InputKinds}", Required = true, AllowMultipleArgumentsPerToken = true };
        var holdout = new Option<double>("--holdout") { Description = "Fraction of each kind kept out of training and scored for the ROC AUC (every n-th document)", DefaultValueFactory = _ => 0.2 };
        var modelOut = new Option<string>("--out") { Description = "Folder to write the model to", Required = true };
        var sample = new Option<int?>("--negatives") { Description = "Sample this many of the --negative documents (seeded; DCLM samples the crawl to as many as the positives); default: all" };
        var train = new Command("train", "Train a classifier that scores documents like --positive high and like --negative low") { positive, negative, holdout, sample, modelOut };
        train.SetAction(parse =>
        {
            var fraction = parse.GetValue(holdout);
            if (fraction is < 0 or >= 1) throw new ArgumentException($"--holdout {fraction}: must be at least 0 and less than 1");
            var positives = Read(parse.GetValue(positive)!).Select(d => d.Text).ToList();
            var negatives = Read(parse.GetValue(negative)!).Select(d => d.Text).ToList();
            if (parse.GetValue(sample) is { } count)
            {
                if (count < 2) throw new ArgumentException($"--negatives {count}: at least 2");
                // A seeded sample of the crawl, in the crawl's order: the same inputs give the same model.
                var random = new Random(1);
                negatives = negatives.Select((text, i) => (text, i, key: random.Next())).OrderBy(x => x.key).Take(count).OrderBy(x => x.i).Select(x => x.text).ToList();
            }
            var classifier = QualityClassifier.Train(positives, negatives, fraction);
            var folder = CliInputs.OutDir(parse.GetValue(modelOut)!);
            AtomicWrite.Folder(folder, classifier.Save);
            var auc = classifier.Info.HeldOutRocAuc is { } a ? $"{a:F3}" : "n/a (nothing of both kinds held out)";
            AnsiConsole.MarkupLine($"[green]quality train[/]: {positives.Count:N0} positive and {negatives.Count:N0} negative documents; held-out ROC AUC {auc}; model {Markup.Escape(folder)}");
            return 0;
        });

        var model = new Option<string>("--model") { Description = "Folder written by `pipeline quality train`", Required = true };
        var inputs = new Argument<string[]>("inputs") { Description = $"Documents to score: {InputKinds}", Arity = ArgumentArity.OneOrMore };
        var scoresOut = new Option<string>("--out") { Description = "JSONL file to write: one {\"id\", \"score\"} per document, in input order", Required = true };
        var score = new Command("score", "Score documents with a trained quality classifier (the probability of the positive kind)") { model, inputs, scoresOut };
        score.SetAction(parse =>
        {
            var classifier = QualityClassifier.Load(parse.GetValue(model)!);
            var documents = Read(parse.GetValue(inputs)!);
            var path = Path.GetFullPath(parse.GetValue(scoresOut)!);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            AtomicWrite.File(path, stream =>
            {
                using var writer = new StreamWriter(stream, leaveOpen: true);
                foreach (var batch in documents.Chunk(1_000))
                {
                    var scores = classifier.Score(batch.Select(d => d.Text).ToList());
                    for (var i = 0; i < batch.Length; i++)
                        writer.WriteLine(new JsonObject { ["id"] = batch[i].Id, ["score"] = Math.Round(scores[i], 6) }.ToJsonString());
                }
            });
            AnsiConsole.MarkupLine($"[green]quality score[/]: {documents.Count:N0} documents scored into {Markup.Escape(path)}");
            return 0;
        });
        return new Command("quality", "A trained quality classifier: train it on documents to keep and to remove, score documents with it") { train, score };
    }

    /// <summary>The documents of the inputs, in order: folders recursively in name order.</summary>
    private static List<(string Id, string Text)> Read(IEnumerable<string> paths)
    {
        var documents = new List<(string, string)>();
        foreach (var path in paths)
        {
            if (Directory.Exists(path))
            {
                var files = Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories)
                    .Where(f => Path.GetExtension(f).ToLowerInvariant() is ".jsonl" or ".html" or ".htm" or ".parquet").Order(StringComparer.Ordinal);
                foreach (var file in files) documents.AddRange(ReadFile(file));
            }
            else if (File.Exists(path)) documents.AddRange(ReadFile(path));
            else throw new FileNotFoundException($"{path}: no such file or folder", path);
        }
        return documents;
    }

    private static IEnumerable<(string Id, string Text)> ReadFile(string file)
    {
        switch (Path.GetExtension(file).ToLowerInvariant())
        {
            case ".html" or ".htm":
                yield return (file, TextExtractor.Extract(File.ReadAllText(file)).Text);
                break;
            case ".jsonl":
                var number = 0;
                foreach (var line in File.ReadLines(file))
                {
                    number++;
                    if (line.Trim().Length == 0) continue;
                    JsonNode? node;
                    try
                    {
                        node = JsonNode.Parse(line);
                    }
                    catch (JsonException e)
                    {
                        throw new InvalidDataException($"{file}:{number}: not JSON ({e.Message})");
                    }
                    if (node is not JsonObject o || o["text"] is not JsonValue text || !text.TryGetValue<string>(out var value))
                        throw new InvalidDataException($"{file}:{number}: no \"text\" string");
                    yield return (o["id"]?.ToString() ?? $"{file}:{number}", value);
                }
                break;
            case ".parquet":
                var folder = Path.GetDirectoryName(Path.GetFullPath(file))!;
                var rows = new ShardStore(folder).ReadParquetUncheckedAsync<CleanDocument>(Path.GetFileName(file)).GetAwaiter().GetResult();
                foreach (var row in rows) yield return (row.Id, row.Text);
                break;
            default:
                throw new InvalidDataException($"{file}: not an input the classifier reads ({InputKinds})");
        }
    }
}
