using System.Text;
using System.Text.RegularExpressions;

namespace Pipeline.Crawler;

/// <summary>
/// Decodes a page body to text in the order the WHATWG Encoding and HTML standards give: a byte order mark, then the
/// HTTP Content-Type charset, then a &lt;meta&gt; declaration in the first 1,024 bytes (the prescan), and only when none
/// of them names an encoding, detection among UTF-8, ISO-2022-JP, Shift_JIS and EUC-JP (the encodings Japanese
/// pages use), falling back to windows-1252. A declared encoding is final: bytes invalid in it become U+FFFD and
/// never send the decoder back to guessing, which would turn a UTF-8 page with a few stray bytes into mojibake.
/// </summary>
public static partial class CharsetDecoder
{
    static CharsetDecoder() => Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);

    /// <summary>Which step decided the encoding, as recorded in the raw-page row.</summary>
    public static class Sources
    {
        public const string Bom = "bom";
        public const string Http = "http";
        public const string Meta = "meta";
        public const string Detected = "detected";
    }

    public static (string Text, string Charset, string Source) Decode(ReadOnlySpan<byte> body, string? headerCharset)
    {
        if (body.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) return (Encoding.UTF8.GetString(body[3..]), "utf-8", Sources.Bom);
        if (body.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE])) return (Encoding.Unicode.GetString(body[2..]), "utf-16le", Sources.Bom);
        if (body.StartsWith((ReadOnlySpan<byte>)[0xFE, 0xFF])) return (Encoding.BigEndianUnicode.GetString(body[2..]), "utf-16be", Sources.Bom);
        if (TryGetEncoding(headerCharset) is { } http) return (Lenient(http).GetString(body), http.WebName, Sources.Http);
        if (TryGetEncoding(MetaCharset(body)) is { } meta)
        {
            // WHATWG: a <meta> that names UTF-16 means UTF-8 (the bytes being ASCII-compatible is how it was read).
            if (meta.WebName.StartsWith("utf-16", StringComparison.Ordinal)) meta = Encoding.UTF8;
            return (Lenient(meta).GetString(body), meta.WebName, Sources.Meta);
        }
        var detected = Detect(body);
        return (detected.GetString(body), detected.WebName, Sources.Detected);
    }

    /// <summary>The encoding with U+FFFD for invalid bytes (what the standard's decoders do).</summary>
    private static Encoding Lenient(Encoding encoding) =>
        Encoding.GetEncoding(encoding.CodePage, EncoderFallback.ReplacementFallback, new DecoderReplacementFallback("\uFFFD"));

    public static Encoding Detect(ReadOnlySpan<byte> body)
    {
        // ISO-2022-JP is 7-bit, so it is valid UTF-8 too: its escape sequences (ESC $ B, ESC $ @) decide first.
        if (body.IndexOfAnyInRange((byte)0x80, (byte)0xFF) < 0
            && (body.IndexOf((ReadOnlySpan<byte>)[0x1B, (byte)'$', (byte)'B']) >= 0 || body.IndexOf((ReadOnlySpan<byte>)[0x1B, (byte)'$', (byte)'@']) >= 0))
            return Encoding.GetEncoding("iso-2022-jp");
        if (DecodesCleanly(body, Encoding.UTF8)) return Encoding.UTF8;
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
        // The prescan looks at the first 1,024 bytes only (HTML Standard, "prescan a byte stream").
        var head = Encoding.ASCII.GetString(body[..Math.Min(body.Length, 1024)]);
        var match = MetaRegex().Match(head);
        return match.Success ? match.Groups[1].Value : null;
    }

    [GeneratedRegex("""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-:]+)""", RegexOptions.IgnoreCase)]
    private static partial Regex MetaRegex();
}
