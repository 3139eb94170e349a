using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Parquet.Serialization;
using Pipeline.Bpe;

namespace Pipeline.Alignment;

/// <summary>An SFT example as a conversation; a DPO pair as a prompt with a chosen and a rejected reply.</summary>
public sealed record SftExample(IReadOnlyList<ChatMessage> Messages);

public sealed record PreferencePair(IReadOnlyList<ChatMessage> Prompt, string Chosen, string Rejected);

/// <summary>A prompt for RL (GRPO), with the reference answer a verifiable reward compares the completion with.</summary>
public sealed record RlPrompt(IReadOnlyList<ChatMessage> Prompt, string? Answer);

/// <summary>A record to score with a reward model: one response, or a chosen and a rejected one, to a prompt; <see cref="Line"/> is its line (row) number.</summary>
public sealed record ScoringRecord(int Line, IReadOnlyList<ChatMessage> Prompt, IReadOnlyList<string> Responses);

/// <summary>
/// Reads alignment data from JSONL or Parquet. SFT records are {"instruction", "input"?, "output"} or
/// {"messages": [{role, content}]}; preference records are {"prompt", "chosen", "rejected"}. In Parquet these are
/// string columns of the same names ("messages" holding the JSON array). A malformed record is reported with file and
/// line (row) number and skipped; the rest is read.
/// </summary>
public static class AlignmentData
{
    public static List<SftExample> ReadSft(string path, List<string> errors) => Read(path, errors, line =>
    {
        if (line["messages"] is JsonArray messages)
            return new SftExample(messages.Select(m => new ChatMessage(Text(m, "role"), Text(m, "content", allowEmpty: true))).ToList());
        var instruction = Text(line, "instruction");
        var input = line["input"]?.GetValue<string>();
        var prompt = string.IsNullOrWhiteSpace(input) ? instruction : $"{instruction}\n\n{input}";
        return new SftExample([new ChatMessage("user", prompt), new ChatMessage("assistant", Text(line, "output", allowEmpty: true))]);
    });

    public static List<PreferencePair> ReadPreferences(string path, List<string> errors) => Read(path, errors, line =>
        new PreferencePair([new ChatMessage("user", Text(line, "prompt"))], Text(line, "chosen", allowEmpty: true), Text(line, "rejected", allowEmpty: true)));

    /// <summary>Prompts for GRPO: {"prompt", "answer"?} (the answer is what a verifier compares the completion with).</summary>
    public static List<RlPrompt> ReadPrompts(string path, List<string> errors) => Read(path, errors, line =>
        new RlPrompt([new ChatMessage("user", Text(line, "prompt"))], line["answer"] is null ? null : Text(line, "answer", allowEmpty: true)));

    /// <summary>Records for `pipeline reward score`: {"prompt", "response"} or {"prompt", "chosen", "rejected"}.</summary>
    public static List<ScoringRecord> ReadScoring(string path, List<string> errors) => Read(path, errors, (line, number) =>
        new ScoringRecord(number, [new ChatMessage("user", Text(line, "prompt"))], line["response"] is not null
            ? [Text(line, "response", allowEmpty: true)]
            : [Text(line, "chosen", allowEmpty: true), Text(line, "rejected", allowEmpty: true)]));

    private static string Text(JsonNode? node, string field, bool allowEmpty = false)
    {
        var value = node?[field]?.GetValue<string>() ?? throw new InvalidDataException($"field '{field}' is missing");
        if (!allowEmpty && value.Length == 0) throw new InvalidDataException($"field '{field}' is empty");
        return value;
    }

    private static List<T> Read<T>(string path, List<string> errors, Func<JsonObject, T> parse) => Read(path, errors, (line, _) => parse(line));

    private static List<T> Read<T>(string path, List<string> errors, Func<JsonObject, int, T> parse)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"alignment data '{path}' does not exist", path);
        var parquet = path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase);
        var result = new List<T>();
        var number = 0;
        foreach (var record in parquet ? ParquetRecords(path) : File.ReadLines(path).Select(line => string.IsNullOrWhiteSpace(line) ? null : line))
        {
            number++;
            if (record is null) continue;
            try
            {
                result.Add(parse(JsonNode.Parse(record)?.AsObject() ?? throw new InvalidDataException("not a JSON object"), number));
            }
            catch (Exception e) when (e is JsonException or InvalidDataException or InvalidOperationException or FormatException)
            {
                errors.Add($"{path}, {(parquet ? "row" : "line")} {number}: {e.Message}");
            }
        }
        return result;
    }

    /// <summary>Each Parquet row as the JSON object a JSONL line would hold, so both formats share one parser.</summary>
    private static IEnumerable<string> ParquetRecords(string path)
    {
        IList<AlignmentRow> rows;
        try
        {
            using var stream = File.OpenRead(path);
            rows = ParquetSerializer.DeserializeAsync<AlignmentRow>(stream).GetAwaiter().GetResult().Data;
        }
        catch (Exception e) when (e is not (FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException))
        {
            throw new InvalidDataException($"alignment data '{path}' is not a readable Parquet file ({e.Message})", e);
        }
        foreach (var row in rows)
        {
            var json = new JsonObject();
            if (row.Messages is not null) json["messages"] = JsonNode.Parse(row.Messages);
            foreach (var (name, value) in new[] { ("instruction", row.Instruction), ("input", row.Input), ("output", row.Output),
                ("prompt", row.Prompt), ("chosen", row.Chosen), ("rejected", row.Rejected), ("response", row.Response), ("answer", row.Answer) })
            {
                if (value is not null) json[name] = value;
            }
            yield return json.ToJsonString();
        }
    }

    /// <summary>The columns an alignment Parquet file may have (absent columns read as null).</summary>
    private sealed class AlignmentRow
    {
        [JsonPropertyName("instruction")] public string? Instruction { get; set; }
        [JsonPropertyName("input")] public string? Input { get; set; }
        [JsonPropertyName("output")] public string? Output { get; set; }
        [JsonPropertyName("messages")] public string? Messages { get; set; }
        [JsonPropertyName("prompt")] public string? Prompt { get; set; }
        [JsonPropertyName("chosen")] public string? Chosen { get; set; }
        [JsonPropertyName("rejected")] public string? Rejected { get; set; }
        [JsonPropertyName("response")] public string? Response { get; set; }
        [JsonPropertyName("answer")] public string? Answer { get; set; }
    }
}
