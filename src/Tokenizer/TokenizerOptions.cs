using System.ComponentModel.DataAnnotations;
namespace Pipeline.Tokenizer;

/// <summary>The Tokenizer configuration section (Pipeline:Tokenizer).</summary>
public sealed class TokenizerOptions
{
    public const string Section = "Pipeline:Tokenizer";

    [Range(260, 1 << 20)]

    public int VocabSize { get; set; } = 32_000;
    [Range(1, int.MaxValue)]
    public int MinFrequency { get; set; } = 2;
    /// <summary>At most this many characters of text are used for training (sample cap for very large corpora).</summary>
    [Range(1L, long.MaxValue)]
    public long MaxTrainingChars { get; set; } = 500_000_000;
    /// <summary>Per mille of documents (by id hash) that go to the validation split.</summary>
    [Range(0, 1000)]
    public int ValidationPerMille { get; set; } = 50;
}
