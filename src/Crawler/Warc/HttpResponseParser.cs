using System.IO.Compression;
using System.Text;

namespace Pipeline.Crawler.Warc;

/// <summary>The HTTP response inside a WARC response record: status, headers and the decoded (de-chunked, decompressed) body.</summary>
public sealed record HttpPayload(int Status, string ContentType, string? Charset, byte[] Body);

internal static class HttpResponseParser
{
    public static HttpPayload Parse(byte[] block, int maxBodyBytes)
    {
        var end = block.AsSpan().IndexOf("\r\n\r\n"u8);
        var separator = 4;
        if (end < 0)
        {
            end = block.AsSpan().IndexOf("\n\n"u8);
            separator = 2;
        }
        if (end < 0) throw new InvalidDataException("HTTP response has no end of headers");
        var lines = Encoding.Latin1.GetString(block, 0, end).Split('\n');
        var statusLine = lines[0].Trim();
        var parts = statusLine.Split(' ', 3);
        if (parts.Length < 2 || !parts[0].StartsWith("HTTP/", StringComparison.Ordinal) || !int.TryParse(parts[1], out var status))
            throw new InvalidDataException($"bad HTTP status line '{statusLine}'");
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':');
            if (colon > 0) headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }
        var body = block.AsSpan(end + separator).ToArray();
        if (headers.GetValueOrDefault("Transfer-Encoding", "").Contains("chunked", StringComparison.OrdinalIgnoreCase)) body = Dechunk(body);
        body = Decompress(body, headers.GetValueOrDefault("Content-Encoding", "").Trim().ToLowerInvariant(), maxBodyBytes);
        var contentType = headers.GetValueOrDefault("Content-Type", "");
        string? charset = null;
        var at = contentType.IndexOf("charset=", StringComparison.OrdinalIgnoreCase);
        if (at >= 0) charset = contentType[(at + 8)..].Split(';')[0].Trim().Trim('"', '\'');
        return new HttpPayload(status, contentType.Split(';')[0].Trim().ToLowerInvariant(), charset, body);
    }

    private static byte[] Dechunk(byte[] body)
    {
        using var output = new MemoryStream(body.Length);
        var position = 0;
        while (position < body.Length)
        {
            var lineEnd = body.AsSpan(position).IndexOf("\r\n"u8);
            if (lineEnd < 0) break;
            var sizeText = Encoding.ASCII.GetString(body, position, lineEnd).Split(';')[0].Trim();
            if (!int.TryParse(sizeText, System.Globalization.NumberStyles.HexNumber, null, out var size)) return body; // not really chunked
            position += lineEnd + 2;
            if (size == 0) break;
            size = Math.Min(size, body.Length - position);
            output.Write(body, position, size);
            position += size + 2;
        }
        return output.ToArray();
    }

    private static byte[] Decompress(byte[] body, string encoding, int maxBodyBytes)
    {
        Stream? decoder = encoding switch
        {
            "gzip" or "x-gzip" => new GZipStream(new MemoryStream(body), CompressionMode.Decompress),
            "deflate" => new ZLibStream(new MemoryStream(body), CompressionMode.Decompress),
            "br" => new BrotliStream(new MemoryStream(body), CompressionMode.Decompress),
            _ => null,
        };
        if (decoder is null) return body;
        using (decoder)
        {
            var output = new MemoryStream();
            var buffer = new byte[81920];
            int n;
            while ((n = decoder.Read(buffer)) > 0)
            {
                // Bounded: a decompression bomb in an archive is cut off like one on the live web.
                if (output.Length + n > maxBodyBytes) throw new InvalidDataException($"body inflates to more than {maxBodyBytes} bytes");
                output.Write(buffer, 0, n);
            }
            return output.ToArray();
        }
    }
}
