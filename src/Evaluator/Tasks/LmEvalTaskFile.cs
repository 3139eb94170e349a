using System.Text.Json;
using System.Text.Json.Nodes;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;
using Pipeline.Runtime;

namespace Pipeline.Evaluator.Tasks;

/// <summary>
/// Reads task files in lm-evaluation-harness's YAML format (a top-level <c>task:</c> key) with the dataset from local
/// JSONL or Parquet files, as lm-eval itself loads local data (<c>dataset_path: json</c> or <c>parquet</c> with
/// <c>dataset_kwargs.data_files</c>), since no hub is reachable. Supported: <c>output_type</c> multiple_choice and
/// generate_until; <c>doc_to_text</c>, <c>doc_to_target</c>, <c>doc_to_choice</c> (a field name, a list, or Jinja
/// expressions, <see cref="JinjaExpressions"/>); <c>target_delimiter</c>, <c>fewshot_delimiter</c>,
/// <c>num_fewshot</c>, <c>description</c>, <c>metric_list</c>, <c>generation_kwargs</c> (<c>until</c>,
/// <c>max_gen_toks</c>, <c>do_sample</c>, <c>temperature</c>). Few-shot examples are the first <c>num_fewshot</c>
/// of <c>fewshot_split</c> (lm-eval samples them at random with seed 1234). A metric may be a <c>!function</c> hook
/// (<c>metric: !function utils.jsquad_char_f1</c>, as lm-eval runs a metric it does not ship) when the function has
/// the name of one of this project's scorers, which then scores it; <c>process_results: !function ...</c> is taken
/// as lm-eval's way to the same metrics. Anything else is an error naming it. A task becomes an <see cref="EvalTask"/> whose rows hold the rendered text,
/// choices and target, so it runs, and is scored, exactly like the project's own task files.
/// </summary>
public static class LmEvalTaskFile
{
    public sealed class Definition
    {
        public string Task { get; set; } = "";
        public List<string>? Tag { get; set; }
        public string DatasetPath { get; set; } = "json";
        public string? DatasetName { get; set; }
        public DatasetKwargs DatasetKwargs { get; set; } = new();
        public string? TestSplit { get; set; }
        public string? ValidationSplit { get; set; }
        public string? TrainingSplit { get; set; }
        public string? FewshotSplit { get; set; }
        public string OutputType { get; set; } = "";
        public string DocToText { get; set; } = "";
        public string DocToTarget { get; set; } = "";
        public object? DocToChoice { get; set; }
        public string TargetDelimiter { get; set; } = " ";
        public string FewshotDelimiter { get; set; } = "\n\n";
        public int NumFewshot { get; set; }
        public string Description { get; set; } = "";
        public List<MetricEntry> MetricList { get; set; } = [];
        /// <summary>lm-eval's per-document hook (<c>!function utils.name</c>); this project scores the metrics itself.</summary>
        public string? ProcessResults { get; set; }
        public GenerationKwargs GenerationKwargs { get; set; } = new();
        public Metadata Metadata { get; set; } = new();
    }

    public sealed class DatasetKwargs
    {
        public Dictionary<string, string> DataFiles { get; set; } = [];
    }

    public sealed class MetricEntry
    {
        public string Metric { get; set; } = "";
        public string? Aggregation { get; set; }
        public bool? HigherIsBetter { get; set; }
        public bool? IgnoreCase { get; set; }
        public bool? IgnorePunctuation { get; set; }
    }

    public sealed class GenerationKwargs
    {
        public List<string> Until { get; set; } = ["\n\n"];
        public int MaxGenToks { get; set; } = 256;
        public bool DoSample { get; set; }
        public double Temperature { get; set; }
    }

    /// <summary>lm-eval's free-form metadata; this project reads the version and, for judged tasks, the judge.</summary>
    public sealed class Metadata
    {
        public double Version { get; set; } = 1.0;
        /// <summary>The judge endpoint; empty = the PIPELINE_JUDGE_URL environment variable.</summary>
        public string JudgeUrl { get; set; } = "";
        public string JudgeAspectField { get; set; } = "eval_aspect";
        public string JudgeRubric { get; set; } = "";
    }

    /// <summary>Whether a file is in lm-eval's format: YAML with a top-level <c>task:</c> key.</summary>
    public static bool IsLmEval(string path) =>
        !path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && File.ReadLines(path).Any(l => l.StartsWith("task:", StringComparison.Ordinal));

    public static EvalTask Load(string path)
    {
        Definition definition;
        try
        {
            definition = new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance)
                .WithTagMapping("!function", typeof(string)) // lm-eval's hook: its value names a Python function
                .Build().Deserialize<Definition>(File.ReadAllText(path)) ?? new Definition();
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            var detail = e.InnerException?.Message ?? e.Message;
            throw new InvalidDataException($"lm-eval task file '{path}' ({e.Start}): {detail}", e);
        }
        void Fail(string field, string problem) => throw new InvalidDataException($"lm-eval task file '{path}', field '{field}': {problem}");
        if (definition.Task.Length == 0) Fail("task", "missing");
        // A hook that renders documents is Python this project cannot run (a metric hook it can: by its scorer's name).
        if (System.Text.RegularExpressions.Regex.Match(File.ReadAllText(path), @"^(doc_to_\w+|process_docs)\s*:\s*!function", System.Text.RegularExpressions.RegexOptions.Multiline) is { Success: true } hook)
            Fail(hook.Groups[1].Value, "!function hooks that render documents (Python code) are not supported; use a field name or a Jinja template");
        if (definition.DatasetPath is not ("json" or "parquet")) Fail("dataset_path", $"'{definition.DatasetPath}' is a hub dataset; no hub is reachable here: use json or parquet with dataset_kwargs.data_files (docs/evaluator.md)");
        var type = definition.OutputType switch
        {
            "multiple_choice" => "multiple_choice",
            "generate_until" => "generation",
            _ => null,
        };
        if (type is null) Fail("output_type", $"'{definition.OutputType}' is not supported (multiple_choice, generate_until)");
        var testSplit = definition.TestSplit ?? definition.ValidationSplit;
        if (testSplit is null) Fail("test_split", "missing (or validation_split)");
        var fewshotSplit = definition.FewshotSplit ?? definition.TrainingSplit ?? (definition.ValidationSplit != testSplit ? definition.ValidationSplit : null);
        if (definition.NumFewshot > 0 && fewshotSplit is null) Fail("fewshot_split", $"num_fewshot is {definition.NumFewshot} but no split gives few-shot examples");

        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        List<JsonObject> Split(string split)
        {
            if (!definition.DatasetKwargs.DataFiles.TryGetValue(split, out var file)) Fail("dataset_kwargs.data_files", $"no file for split '{split}'");
            var full = Path.GetFullPath(Path.Combine(folder, file!));
            if (!File.Exists(full)) Fail("dataset_kwargs.data_files", $"'{full}' (split '{split}') does not exist; put the dataset there (docs/evaluator.md)");
            return definition.DatasetPath == "parquet" ? ParquetRows(full) : TaskLoader.Examples(new EvalTask { Data = full, SourceFile = path });
        }

        // A hook is named by its function ("utils.jsquad_char_f1" scores as jsquad_char_f1), as lm-eval names its results.
        var metrics = definition.MetricList.Select(m => m.Metric[(m.Metric.LastIndexOf('.') + 1)..]).ToList();
        foreach (var entry in definition.MetricList.Where(m => m.Aggregation is not (null or "mean")))
            Fail("metric_list", $"{entry.Metric}: aggregation '{entry.Aggregation}' is not supported (mean)");
        var rows = new List<JsonObject>();
        var source = fewshotSplit is null ? [] : Split(fewshotSplit).Take(definition.NumFewshot).ToList();
        if (source.Count < definition.NumFewshot) Fail("num_fewshot", $"{definition.NumFewshot} examples asked for, split '{fewshotSplit}' has {source.Count}");
        var number = 0;
        foreach (var doc in source.Concat(Split(testSplit!)))
        {
            number++;
            try
            {
                rows.Add(Row(definition, type!, doc));
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"lm-eval task file '{path}', document {number}: {e.Message}", e);
            }
        }
        var task = new EvalTask
        {
            Name = definition.Task,
            Version = (int)Math.Floor(definition.Metadata.Version),
            Type = type!,
            Data = path,
            Prompt = "{text}",
            Choices = "choices",
            Answer = "target",
            AnswerPrefix = definition.TargetDelimiter,
            FewShot = definition.NumFewshot,
            FewShotDelimiter = definition.FewshotDelimiter,
            Description = definition.Description,
            Aspect = "aspect",
            Rubric = definition.Metadata.JudgeRubric,
            Rows = rows,
            SourceFile = Path.GetFullPath(path),
        };
        if (type == "multiple_choice")
        {
            var unsupported = metrics.Where(m => m is not ("acc" or "acc_norm")).ToList();
            if (unsupported.Count > 0) Fail("metric_list", $"{string.Join(", ", unsupported)}: multiple choice gives acc and acc_norm");
        }
        else
        {
            var unknown = metrics.Where(m => !Scorers.Generation.Contains(m)).ToList();
            if (unknown.Count > 0) Fail("metric_list", $"{string.Join(", ", unknown)} not among {string.Join(", ", Scorers.Generation)}");
            task.Scorers = metrics.Count > 0 ? metrics : ["exact_match"];
            task.Generation = new GenerationSettings
            {
                Stop = definition.GenerationKwargs.Until,
                MaxTokens = definition.GenerationKwargs.MaxGenToks,
                Temperature = definition.GenerationKwargs.DoSample ? definition.GenerationKwargs.Temperature : 0,
            };
            if (task.Scorers.Contains("judge"))
            {
                task.JudgeUrl = definition.Metadata.JudgeUrl.Length > 0 ? definition.Metadata.JudgeUrl : Environment.GetEnvironmentVariable("PIPELINE_JUDGE_URL") ?? "";
                if (task.JudgeUrl.Length == 0) Fail("metadata.judge_url", "the judge metric needs an endpoint (or PIPELINE_JUDGE_URL)");
            }
        }
        if (rows.Count <= task.FewShot) Fail("test_split", "has no documents");
        return task;
    }

    /// <summary>A document as the runner reads it: the rendered prompt, the choices and the target.</summary>
    private static JsonObject Row(Definition definition, string type, JsonObject doc)
    {
        var text = Template(definition.DocToText, doc);
        var row = new JsonObject { ["text"] = text };
        var target = JinjaExpressions.Value(FieldOrTemplate(definition.DocToTarget), doc);
        if (type == "multiple_choice")
        {
            var choices = Choices(definition.DocToChoice, doc);
            row["choices"] = new JsonArray(choices.Select(c => (JsonNode)c).ToArray());
            var index = target is JsonValue v && v.TryGetValue<long>(out var n) ? (int)n
                : target is JsonValue s && int.TryParse(s.ToString(), out var parsed) ? parsed
                : choices.IndexOf(JinjaExpressions.Text(target));
            if (index < 0 || index >= choices.Count) throw new InvalidDataException($"doc_to_target gives '{JinjaExpressions.Text(target)}', not a choice or an index of one ({choices.Count} choices)");
            row["target"] = index;
        }
        else
        {
            row["target"] = JinjaExpressions.Text(target);
            row["aspect"] = doc[definition.Metadata.JudgeAspectField]?.ToString() ?? "";
        }
        return row;
    }

    private static string Template(string template, JsonObject doc) => JinjaExpressions.Render(FieldOrTemplate(template), doc);

    /// <summary>lm-eval takes a bare field name as the field's value.</summary>
    private static string FieldOrTemplate(string template) =>
        System.Text.RegularExpressions.Regex.IsMatch(template, @"^\w+$") ? "{{" + template + "}}" : template;

    private static List<string> Choices(object? docToChoice, JsonObject doc)
    {
        JsonNode? value = docToChoice switch
        {
            List<object> list => new JsonArray(list.Select(i => (JsonNode)JsonValue.Create(i.ToString()!)).ToArray()),
            string template => JinjaExpressions.Value(FieldOrTemplate(template), doc),
            _ => throw new InvalidDataException("doc_to_choice is missing (a list, a field name or a template)"),
        };
        if (value is not JsonArray array) throw new InvalidDataException($"doc_to_choice gives '{JinjaExpressions.Text(value)}', not a list");
        return array.Select(JinjaExpressions.Text).ToList();
    }

    private static List<JsonObject> ParquetRows(string path)
    {
        using var stream = File.OpenRead(path);
        var data = Parquet.Serialization.ParquetSerializer.DeserializeUntypedAsync(stream).GetAwaiter().GetResult().Data;
        return data.Select(row => JsonSerializer.SerializeToNode(row)!.AsObject()).ToList();
    }
}
