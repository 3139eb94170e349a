namespace Pipeline.Bpe;

/// <summary>Special tokens reserved in every vocabulary: document separator, padding and the chat template's turns.</summary>
public static class SpecialTokens
{
    public const string EndOfText = "<|endoftext|>";
    public const string Pad = "<|pad|>";
    public const string System = "<|system|>";
    public const string User = "<|user|>";
    public const string Assistant = "<|assistant|>";
    public const string EndOfTurn = "<|end|>";

    public static IReadOnlyList<string> All { get; } = [EndOfText, Pad, System, User, Assistant, EndOfTurn];
}
