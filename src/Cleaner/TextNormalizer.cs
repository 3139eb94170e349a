using System.Text;

namespace Pipeline.Cleaner;

/// <summary>Unicode clean-up: lone surrogates and control characters removed, then NFKC (configurable).</summary>
public static class TextNormalizer
{
    public static string Normalize(string text, bool nfkc)
    {
        var builder = new StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c))
            {
                if (i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                {
                    builder.Append(c).Append(text[++i]);
                }
                continue;
            }
            if (char.IsLowSurrogate(c)) continue;
            if (c == '\uFFFD' || c == '\uFEFF') continue;
            if (char.IsControl(c) && c != '\n' && c != '\t') continue;
            builder.Append(c == '\t' ? ' ' : c);
        }
        var result = builder.ToString();
        return nfkc ? result.Normalize(NormalizationForm.FormKC) : result;
    }
}
