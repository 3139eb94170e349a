using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pipeline.Alignment;

/// <summary>An SFT example as a conversation; a DPO pair as a prompt with a chosen and a rejected reply.</summary>
public sealed record SftExample(IReadOnlyList<ChatMessage> Messages);

public sealed record PreferencePair(IReadOnlyList<ChatMessage> Prompt, string Chosen, string Rejected);

/// <summary>
/// Reads alignment data from JSONL. SFT lines are {"instruction", "input"?, "output"} or {"messages": [{role, content}]};
/// preference lines are {"prompt", "chosen", "rejected"}. A malformed line is reported with file and line number and
/// skipped; the rest is read.
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

    private static string Text(JsonNode? node, string field, bool allowEmpty = false)
    {
        var value = node?[field]?.GetValue<string>() ?? throw new InvalidDataException($"field '{field}' is missing");
        if (!allowEmpty && value.Length == 0) throw new InvalidDataException($"field '{field}' is empty");
        return value;
    }

    private static List<T> Read<T>(string path, List<string> errors, Func<JsonObject, T> parse)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"alignment data '{path}' does not exist", path);
        var result = new List<T>();
        var number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                result.Add(parse(JsonNode.Parse(line)?.AsObject() ?? throw new InvalidDataException("not a JSON object")));
            }
            catch (Exception e) when (e is JsonException or InvalidDataException or InvalidOperationException or FormatException)
            {
                errors.Add($"{path}, line {number}: {e.Message}");
            }
        }
        return result;
    }
}
