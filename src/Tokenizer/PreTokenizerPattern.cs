using System.Text.RegularExpressions;

namespace Pipeline.Tokenizer;

/// <summary>
/// GPT-style pre-tokenization that treats Japanese sensibly: runs of hiragana, katakana (with ー), kanji and other
/// letters are split apart, numbers go in groups of at most three digits, punctuation runs stand alone.
/// </summary>
public static class PreTokenizerPattern
{
    public const string Pattern =
        @"'(?i:[sdmt]|ll|ve|re)| ?\p{IsHiragana}+| ?[\p{IsKatakana}ー]+| ?[\p{IsCJKUnifiedIdeographs}々〆]+| ?[\p{L}\p{M}-[\p{IsHiragana}\p{IsKatakana}\p{IsCJKUnifiedIdeographs}]]+| ?\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public static Regex Regex { get; } = new(Pattern, RegexOptions.Compiled);
}
