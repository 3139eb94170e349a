using System.Text.RegularExpressions;

namespace Pipeline.Cleaner;

/// <summary>Replaces e-mail addresses, phone numbers (Japanese and international) and IP addresses by placeholders.</summary>
public static partial class PiiMasker
{
    public static (string Text, int Count) Mask(string text)
    {
        var count = 0;
        text = EmailRegex().Replace(text, _ => { count++; return "<EMAIL>"; });
        text = IpRegex().Replace(text, m => IsPrivateDocIp(m.Value) ? m.Value : Count(ref count, "<IP_ADDRESS>"));
        text = PhoneRegex().Replace(text, _ => { count++; return "<PHONE>"; });
        return (text, count);
    }

    private static string Count(ref int count, string placeholder)
    {
        count++;
        return placeholder;
    }

    // Documentation ranges and localhost are not personal data; masking them would ruin technical text.
    private static bool IsPrivateDocIp(string ip) =>
        ip.StartsWith("127.") || ip.StartsWith("192.0.2.") || ip.StartsWith("198.51.100.") || ip.StartsWith("203.0.113.") || ip.StartsWith("0.") || ip == "255.255.255.0";

    [GeneratedRegex(@"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")]
    private static partial Regex EmailRegex();

    [GeneratedRegex(@"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")]
    private static partial Regex IpRegex();

    // +81-3-1234-5678, 03-1234-5678, 090-1234-5678, (03) 1234-5678, +1 415 555 0100.
    [GeneratedRegex(@"(?<![\w-])(?:\+\d{1,3}[ -]?)?(?:\(0?\d{1,4}\)[ -]?|0?\d{1,4}[ -])\d{2,4}[ -]\d{3,4}(?![\w-])")]
    private static partial Regex PhoneRegex();
}
