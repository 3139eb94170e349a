using ICSharpCode.SharpZipLib.Zip.Compression;

namespace Pipeline.Crawler.Warc;

/// <summary>
/// Streams the records of a .warc or .warc.gz file (WARC 1.0/1.1) without loading the file into memory. A record that
/// is corrupt or truncated is reported through the error callback, naming file and offset, and reading resumes at the
/// next record. In .warc.gz every record is its own gzip member (the WARC specification's recommendation, and what
/// Common Crawl publishes); members are inflated one at a time with SharpZipLib's Inflater, which reports exactly
/// where a member ends, so offsets are the members' offsets in the compressed file and a corrupt member is skipped.
/// </summary>
public sealed class WarcReader(int maxRecordBytes = 64 << 20)
{
    private static readonly byte[] WarcMarker = "WARC/1."u8.ToArray();
    private static readonly byte[] GzipMagic = [0x1F, 0x8B, 0x08];

    public IEnumerable<WarcRecord> Read(string path, Action<WarcError> onError)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"WARC file '{path}' does not exist", path);
        return ReadFile(path, onError);
    }

    private IEnumerable<WarcRecord> ReadFile(string path, Action<WarcError> onError)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        var head = new byte[2];
        var isGzip = file.Read(head) == 2 && head[0] == 0x1F && head[1] == 0x8B;
        file.Position = 0;
        foreach (var record in isGzip ? ReadGzip(path, file, onError) : ReadPlain(path, new ByteReader(file), onError, single: false))
            yield return record;
    }

    private IEnumerable<WarcRecord> ReadPlain(string path, ByteReader reader, Action<WarcError> onError, bool single)
    {
        while (true)
        {
            reader.SkipNewlines();
            if (reader.AtEnd) yield break;
            var offset = reader.Position;
            WarcRecord? record = null;
            string? error = null;
            try
            {
                record = ReadRecord(reader, offset);
            }
            catch (MisframedRecordException e)
            {
                // The block overran (or fell short of) the record's real end: the next record may start inside what
                // was read, so look for it from just past this record's start.
                error = e.Message;
                if (reader.CanSeek) reader.Seek(offset);
            }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException)
            {
                error = e.Message;
            }
            if (record is not null)
            {
                yield return record;
                if (single) yield break;
                continue;
            }
            if (error is null) yield break; // only blank lines were left
            onError(new WarcError(path, offset, error));
            if (single || reader.AtEnd) yield break;
            // Resynchronize on the next record's version line.
            reader.Skip(1);
            if (!reader.SeekTo(WarcMarker)) yield break;
        }
    }

    private WarcRecord? ReadRecord(ByteReader reader, long offset)
    {
        string? version;
        do version = reader.ReadLine(); while (version is "");
        if (version is null) return null;
        if (!version.StartsWith("WARC/", StringComparison.Ordinal)) throw new InvalidDataException($"expected a WARC version line, found '{Shorten(version)}'");
        var fields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        while (true)
        {
            var line = reader.ReadLine() ?? throw new EndOfStreamException("record header is truncated");
            if (line.Length == 0) break;
            var colon = line.IndexOf(':');
            if (colon <= 0) throw new InvalidDataException($"malformed header line '{Shorten(line)}'");
            fields[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }
        if (!fields.TryGetValue("Content-Length", out var lengthText) || !long.TryParse(lengthText, out var length) || length < 0)
            throw new InvalidDataException("missing or invalid Content-Length");
        // A Content-Length past the end of the file is a corrupt header, not a huge record: skipping it would drop
        // every record after it. Nothing is skipped; the caller resynchronizes at the next version line.
        if (reader.Remaining is { } remaining && length > remaining)
            throw new InvalidDataException($"Content-Length {length} runs past the end of the file ({remaining} bytes left)");
        if (length > maxRecordBytes)
        {
            reader.Skip(length);
            throw new InvalidDataException($"record of {length} bytes is larger than the {maxRecordBytes}-byte limit; skipped");
        }
        var block = reader.ReadExactly((int)length);
        // A record is its block and then a blank line (CRLF CRLF). A Content-Length that is too short leaves block bytes
        // where the line end belongs; one that is too long but ends inside the file takes in the next record's start,
        // blank line and version line. Either way the length is wrong and the record is not kept.
        if (!reader.AtEnd && reader.PeekAvailable()[0] is not ((byte)'\r' or (byte)'\n'))
            throw new MisframedRecordException($"Content-Length {length} does not end at the record's end (no line end follows the block)");
        if (block.AsSpan().IndexOf("\r\n\r\nWARC/1."u8) >= 0)
            throw new MisframedRecordException($"Content-Length {length} runs into the next record");
        return new WarcRecord(offset, fields, block);
    }

    private sealed class MisframedRecordException(string message) : Exception(message);

    private IEnumerable<WarcRecord> ReadGzip(string path, FileStream file, Action<WarcError> onError)
    {
        var reader = new ByteReader(file);
        var inflater = new Inflater(noHeader: true);
        var output = new MemoryStream();
        var chunk = new byte[1 << 16];
        while (!reader.AtEnd)
        {
            var offset = reader.Position;
            string? error = null;
            try
            {
                ReadMember(reader, inflater, output, chunk);
            }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException or ICSharpCode.SharpZipLib.SharpZipBaseException)
            {
                error = $"corrupt gzip member: {e.Message}";
            }
            if (error is not null)
            {
                onError(new WarcError(path, offset, error));
                // Back to just past the bad member's start: inflating it may have consumed (and so skipped) the
                // members after it. The next gzip header after that point starts the next record.
                reader.Seek(offset + 1);
                if (!reader.SeekTo(GzipMagic)) yield break;
                continue;
            }
            output.Position = 0;
            var records = ReadPlain(path, new ByteReader(output, offset, (int)Math.Clamp(output.Length, 1024, 1 << 20)), e => onError(e with { Offset = offset }), single: false);
            foreach (var record in records) yield return record with { Offset = offset };
        }
    }

    /// <summary>Inflates one gzip member (RFC 1952) into <paramref name="output"/>, consuming exactly its bytes.</summary>
    private void ReadMember(ByteReader reader, Inflater inflater, MemoryStream output, byte[] chunk)
    {
        output.SetLength(0);
        var header = reader.ReadExactly(10);
        if (header[0] != 0x1F || header[1] != 0x8B || header[2] != 8) throw new InvalidDataException("not a gzip member header");
        var flags = header[3];
        if ((flags & 4) != 0) // FEXTRA
        {
            var xlen = reader.ReadExactly(2);
            reader.Skip(xlen[0] | (xlen[1] << 8));
        }
        if ((flags & 8) != 0) SkipZeroTerminated(reader); // FNAME
        if ((flags & 16) != 0) SkipZeroTerminated(reader); // FCOMMENT
        if ((flags & 2) != 0) reader.Skip(2); // FHCRC

        inflater.Reset();
        while (!inflater.IsFinished)
        {
            if (inflater.IsNeedingInput)
            {
                var input = reader.PeekAvailable();
                if (input.Count == 0) throw new EndOfStreamException("gzip member is truncated");
                inflater.SetInput(input.Array!, input.Offset, input.Count);
                reader.Skip(input.Count); // given back below when the member ends inside this input
            }
            int n;
            try
            {
                n = inflater.Inflate(chunk);
            }
            catch (Exception e) when (e is IndexOutOfRangeException or ArgumentException or InvalidOperationException)
            {
                // SharpZipLib reports some malformed Huffman tables with these rather than its own exception
                // (an IndexOutOfRangeException in BitReverse, seen in CI); to the reader they are corrupt data.
                throw new InvalidDataException($"invalid deflate data ({e.GetType().Name})", e);
            }
            if (n > 0)
            {
                if (output.Length + n > maxRecordBytes) throw new InvalidDataException($"gzip member inflates to more than {maxRecordBytes} bytes");
                output.Write(chunk, 0, n);
            }
            else if (inflater.IsNeedingDictionary) throw new InvalidDataException("gzip member needs a preset dictionary");
        }
        reader.Unread(inflater.RemainingInput);
        var trailer = reader.ReadExactly(8);
        var crc = BitConverter.ToUInt32(trailer, 0);
        if (crc != System.IO.Hashing.Crc32.HashToUInt32(output.GetBuffer().AsSpan(0, (int)output.Length)))
            throw new InvalidDataException("gzip member fails its CRC-32 check");
    }

    private static void SkipZeroTerminated(ByteReader reader)
    {
        while (reader.ReadExactly(1)[0] != 0) { }
    }

    // Header text is the archive's, possibly hostile: printable only, so an error cannot carry terminal escapes.
    private static string Shorten(string s) => Pipeline.Storage.Printable.Line(s, 60);
}
