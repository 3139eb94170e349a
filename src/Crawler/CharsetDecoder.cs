using System.Text;
using System.Text.RegularExpressions;

namespace Pipeline.Crawler;

/// <summary>
/// Decodes a page body to text: BOM, then the HTTP charset, then a &lt;meta&gt; declaration, then detection among
/// UTF-8, ISO-2022-JP, Shift_JIS and EUC-JP (the encodings Japanese pages use), falling back to windows-1252.
/// </summary>
public static partial class CharsetDecoder
{
    static CharsetDecoder() => Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);

    public static (string Text, string Charset) Decode(ReadOnlySpan<byte> body, string? headerCharset)
    {
        if (body.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) return (Encoding.UTF8.GetString(body[3..]), "utf-8");
        if (body.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE])) return (Encoding.Unicode.GetString(body[2..]), "utf-16le");
        if (body.StartsWith((ReadOnlySpan<byte>)[0xFE, 0xFF])) return (Encoding.BigEndianUnicode.GetString(body[2..]), "utf-16be");

        // A declared charset is trusted only if the bytes decode cleanly with it: wrong declarations are common.
        foreach (var declared in new[] { headerCharset, MetaCharset(body) })
        {
            if (TryGetEncoding(declared) is { } encoding && DecodesCleanly(body, encoding))
                return (encoding.GetString(body), encoding.WebName);
        }
        var detected = Detect(body);
        return (detected.GetString(body), detected.WebName);
    }

    public static Encoding Detect(ReadOnlySpan<byte> body)
    {
        if (DecodesCleanly(body, Encoding.UTF8)) return Encoding.UTF8;
        if (body.IndexOf((ReadOnlySpan<byte>)[0x1B, (byte)'$', (byte)'B']) >= 0) return Encoding.GetEncoding("iso-2022-jp");
        var sjis = Encoding.GetEncoding("shift_jis");
        var euc = Encoding.GetEncoding("euc-jp");
        var sjisScore = JapaneseScore(body, sjis);
        var eucScore = JapaneseScore(body, euc);
        if (Math.Max(sjisScore, eucScore) > 0.2) return sjisScore >= eucScore ? sjis : euc;
        return Encoding.GetEncoding(1252);
    }

    /// <summary>Fraction of decoded characters that are kana or common kanji, minus undecodable ones.</summary>
    private static double JapaneseScore(ReadOnlySpan<byte> body, Encoding encoding)
    {
        var strict = Encoding.GetEncoding(encoding.CodePage, EncoderFallback.ExceptionFallback, DecoderFallback.ReplacementFallback);
        var text = strict.GetString(body[..Math.Min(body.Length, 64 * 1024)]);
        int japanese = 0, bad = 0, nonAscii = 0;
        foreach (var c in text)
        {
            if (c < 128) continue;
            nonAscii++;
            if (c == '\uFFFD') bad++;
            else if (c is >= '\u3040' and <= '\u30FF' or >= '\u4E00' and <= '\u9FFF' or >= '\u3000' and <= '\u303F' or >= '\uFF00' and <= '\uFFEF') japanese++;
        }
        return nonAscii == 0 ? 0 : (japanese - 4.0 * bad) / nonAscii;
    }

    private static bool DecodesCleanly(ReadOnlySpan<byte> body, Encoding encoding)
    {
        var strict = Encoding.GetEncoding(encoding.CodePage, EncoderFallback.ExceptionFallback, DecoderFallback.ExceptionFallback);
        try
        {
            strict.GetCharCount(body);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    private static Encoding? TryGetEncoding(string? name)
    {
        if (string.IsNullOrWhiteSpace(name)) return null;
        name = name.Trim().Trim('"', '\'').ToLowerInvariant();
        name = name switch
        {
            "x-sjis" or "sjis" or "ms_kanji" or "windows-31j" or "cp932" => "shift_jis",
            "x-euc-jp" or "eucjp" => "euc-jp",
            _ => name,
        };
        try
        {
            return Encoding.GetEncoding(name);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private static string? MetaCharset(ReadOnlySpan<byte> body)
    {
        var head = Encoding.ASCII.GetString(body[..Math.Min(body.Length, 4096)]);
        var match = MetaRegex().Match(head);
        return match.Success ? match.Groups[1].Value : null;
    }

    [GeneratedRegex("""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-:]+)""", RegexOptions.IgnoreCase)]
    private static partial Regex MetaRegex();
}
