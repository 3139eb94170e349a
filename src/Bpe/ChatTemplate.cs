namespace Pipeline.Bpe;

/// <summary>One turn of a conversation.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// The chat format shared by SFT, DPO and evaluation prompts, built from the special tokens every vocabulary reserves:
/// <c>&lt;|system|&gt;…&lt;|end|&gt;&lt;|user|&gt;…&lt;|end|&gt;&lt;|assistant|&gt;…&lt;|end|&gt;</c>. Special tokens are inserted
/// by id, never parsed from text, so a message that contains "&lt;|end|&gt;" cannot forge a turn. Only assistant
/// content and its closing &lt;|end|&gt; are trained on (mask true).
/// </summary>
public sealed class ChatTemplate(TextTokenizer tokenizer)
{
    /// <summary>
    /// This format as Jinja, for transformers' apply_chat_template and llama.cpp's tokenizer.chat_template: each turn
    /// is its role token, the content and &lt;|end|&gt;, with nothing between turns; a generation prompt opens an
    /// assistant turn.
    /// </summary>
    public const string Jinja =
        "{% for message in messages %}" +
        "{% if message['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('unknown chat role ' + message['role']) }}{% endif %}" +
        "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}" +
        "{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

    public (List<int> Ids, List<bool> Trained) Encode(IReadOnlyList<ChatMessage> messages, bool openAssistantTurn = false)
    {
        var ids = new List<int>();
        var trained = new List<bool>();
        foreach (var message in messages)
        {
            var role = message.Role switch
            {
                "system" => SpecialTokens.System,
                "user" => SpecialTokens.User,
                "assistant" => SpecialTokens.Assistant,
                _ => throw new InvalidDataException($"unknown chat role '{message.Role}' (system, user or assistant)"),
            };
            var isAssistant = message.Role == "assistant";
            Add(ids, trained, [tokenizer.SpecialIds[role]], false);
            Add(ids, trained, tokenizer.Encode(message.Content), isAssistant);
            Add(ids, trained, [tokenizer.SpecialIds[SpecialTokens.EndOfTurn]], isAssistant);
        }
        if (openAssistantTurn) Add(ids, trained, [tokenizer.SpecialIds[SpecialTokens.Assistant]], false);
        return (ids, trained);
    }

    /// <summary>A prompt that ends in an open assistant turn, for generation and for DPO.</summary>
    public List<int> Prompt(IReadOnlyList<ChatMessage> messages) => Encode(messages, openAssistantTurn: true).Ids;

    /// <summary>An assistant reply as trained tokens: its content followed by &lt;|end|&gt;.</summary>
    public List<int> Reply(string content) => [.. tokenizer.Encode(content), tokenizer.SpecialIds[SpecialTokens.EndOfTurn]];

    private static void Add(List<int> ids, List<bool> trained, IEnumerable<int> tokens, bool train)
    {
        foreach (var t in tokens)
        {
            ids.Add(t);
            trained.Add(train);
        }
    }
}
