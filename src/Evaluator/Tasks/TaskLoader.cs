using System.Text.Json;
using System.Text.Json.Nodes;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;
using Pipeline.Runtime;

namespace Pipeline.Evaluator.Tasks;

/// <summary>Reads and checks task files; every error names the file and the field.</summary>
public static class TaskLoader
{
    public static readonly string[] Types = ["perplexity", "multiple_choice", "generation"];
    public static IReadOnlyList<string> KnownScorers => Scorers.Generation;

    public static EvalTask Load(string path)
    {
        if (!File.Exists(path)) throw new InvalidDataException($"task file '{path}' does not exist");
        if (LmEvalTaskFile.IsLmEval(path)) return LmEvalTaskFile.Load(path);
        EvalTask task;
        try
        {
            var text = File.ReadAllText(path);
            task = path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
                ? JsonSerializer.Deserialize<EvalTask>(text, new JsonSerializerOptions { PropertyNameCaseInsensitive = true }) ?? new EvalTask()
                : new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build().Deserialize<EvalTask>(text) ?? new EvalTask();
        }
        catch (Exception e) when (e is YamlDotNet.Core.YamlException or JsonException)
        {
            throw new InvalidDataException($"task file '{path}': {e.Message}", e);
        }
        task.SourceFile = Path.GetFullPath(path);
        void Fail(string field, string problem) => throw new InvalidDataException($"task file '{path}', field '{field}': {problem}");
        if (string.IsNullOrWhiteSpace(task.Name)) Fail("name", "missing");
        if (!Types.Contains(task.Type)) Fail("type", $"'{task.Type}' is not one of {string.Join(", ", Types)}");
        if (string.IsNullOrWhiteSpace(task.Data)) Fail("data", "missing");
        if (!File.Exists(DataPath(task))) Fail("data", $"'{DataPath(task)}' does not exist");
        if (task.Type != "perplexity")
        {
            if (string.IsNullOrWhiteSpace(task.Prompt)) Fail("prompt", "missing");
            if (string.IsNullOrWhiteSpace(task.Answer)) Fail("answer", "missing");
            var examples = Examples(task);
            if (examples.Count <= task.FewShot) Fail("data", $"has {examples.Count} examples; needs more than few_shot = {task.FewShot}");
            var first = examples[0];
            foreach (var field in TemplateFields(task.Prompt))
                if (first[field] is null) Fail("prompt", $"uses {{{field}}}, which the first example does not have");
            if (first[task.Answer] is null) Fail("answer", $"the first example has no field '{task.Answer}'");
            if (task.Type == "multiple_choice" && first[task.Choices] is not JsonArray) Fail("choices", $"the first example's '{task.Choices}' is not a list");
            foreach (var scorer in task.Scorers)
                if (!KnownScorers.Contains(scorer)) Fail("scorers", $"'{scorer}' is not one of {string.Join(", ", KnownScorers)}");
            if (task.Scorers.Contains("judge") && string.IsNullOrWhiteSpace(task.JudgeUrl)) Fail("judge_url", "the judge scorer needs an endpoint");
        }
        return task;
    }

    public static string DataPath(EvalTask task) => Path.IsPathRooted(task.Data) ? task.Data : Path.Combine(Path.GetDirectoryName(task.SourceFile)!, task.Data);

    /// <summary>The examples of a JSONL data file; a malformed line is an error naming file and line.</summary>
    public static List<JsonObject> Examples(EvalTask task)
    {
        if (task.Rows is { } rows) return rows;
        var path = DataPath(task);
        var examples = new List<JsonObject>();
        var number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                examples.Add(JsonNode.Parse(line)?.AsObject() ?? throw new InvalidDataException("empty"));
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or InvalidDataException)
            {
                throw new InvalidDataException($"task data '{path}', line {number}: {e.Message}", e);
            }
        }
        return examples;
    }

    public static IEnumerable<string> TemplateFields(string template) =>
        System.Text.RegularExpressions.Regex.Matches(template, @"\{(\w+)\}").Select(m => m.Groups[1].Value).Distinct();

    public static string Fill(string template, JsonObject example) =>
        System.Text.RegularExpressions.Regex.Replace(template, @"\{(\w+)\}", m => example[m.Groups[1].Value] is JsonValue v ? v.ToString() : m.Value);
}
