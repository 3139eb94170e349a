using System.IO.Compression;
using System.Text;

namespace Pipeline.Crawler.Warc;

/// <summary>
/// Writes WARC 1.1 records, each its own gzip member when compressing (as Common Crawl does, so readers can seek to a
/// record), to archive a live crawl for replay and to build test and benchmark archives.
/// </summary>
public sealed class WarcWriter(Stream output, bool gzip = true) : IDisposable
{
    public void WriteWarcInfo(string software)
    {
        var body = Encoding.UTF8.GetBytes($"software: {software}\r\nformat: WARC File Format 1.1\r\n");
        WriteRecord("warcinfo", null, DateTime.UtcNow, "application/warc-fields", body);
    }

    /// <summary>A response record holding an HTTP/1.1 response with the given status, content type and body.</summary>
    public void WriteResponse(string uri, DateTime date, int status, string contentType, ReadOnlySpan<byte> body)
    {
        var head = Encoding.ASCII.GetBytes($"HTTP/1.1 {status} {(status == 200 ? "OK" : "Status")}\r\nContent-Type: {contentType}\r\nContent-Length: {body.Length}\r\n\r\n");
        var block = new byte[head.Length + body.Length];
        head.CopyTo(block, 0);
        body.CopyTo(block.AsSpan(head.Length));
        WriteRecord("response", uri, date, "application/http; msgtype=response", block);
    }

    /// <summary>A WET-style conversion record holding extracted plain text.</summary>
    public void WriteConversion(string uri, DateTime date, string text) =>
        WriteRecord("conversion", uri, date, "text/plain", Encoding.UTF8.GetBytes(text));

    public void WriteRecord(string type, string? uri, DateTime date, string contentType, ReadOnlySpan<byte> block)
    {
        var header = new StringBuilder()
            .Append("WARC/1.1\r\n")
            .Append($"WARC-Type: {type}\r\n")
            .Append($"WARC-Record-ID: <urn:uuid:{Guid.NewGuid()}>\r\n")
            .Append($"WARC-Date: {date:yyyy-MM-ddTHH:mm:ssZ}\r\n");
        if (uri is not null) header.Append($"WARC-Target-URI: {uri}\r\n");
        header.Append($"Content-Type: {contentType}\r\n").Append($"Content-Length: {block.Length}\r\n\r\n");
        var headerBytes = Encoding.UTF8.GetBytes(header.ToString());
        if (!gzip)
        {
            output.Write(headerBytes);
            output.Write(block);
            output.Write("\r\n\r\n"u8);
            return;
        }
        using var member = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true);
        member.Write(headerBytes);
        member.Write(block);
        member.Write("\r\n\r\n"u8);
    }

    public void Dispose() => output.Dispose();
}
