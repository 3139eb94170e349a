using System.Text;

namespace Pipeline.Storage;

/// <summary>
/// Text from outside (a WARC header, a page, an error that quotes one) made safe for a log line or a terminal:
/// control characters, escape sequences included, become visible \uXXXX escapes and newlines become spaces,
/// so nothing read from the web can move the cursor, recolour or rewrite what an operator sees.
/// </summary>
public static class Printable
{
    public static string Line(string text, int maxLength = 2000)
    {
        var builder = new StringBuilder(Math.Min(text.Length, maxLength) + 16);
        foreach (var c in text)
        {
            if (builder.Length >= maxLength)
            {
                builder.Append('…');
                break;
            }
            if (c is '\n' or '\r' or '\t') builder.Append(' ');
            else if (char.IsControl(c) || c is '\u2028' or '\u2029' or '\u202E') builder.Append($"\\u{(int)c:X4}");
            else builder.Append(c);
        }
        return builder.ToString();
    }
}
