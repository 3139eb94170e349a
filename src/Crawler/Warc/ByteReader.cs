namespace Pipeline.Crawler.Warc;

/// <summary>
/// A forward-only buffered reader over a stream with the few operations WARC parsing needs: CRLF lines, exact byte
/// counts, skipping and searching for a marker to resynchronize after a corrupt record. Tracks the absolute offset.
/// </summary>
internal sealed class ByteReader(Stream stream, long baseOffset = 0, int bufferSize = 1 << 20)
{
    private byte[] _buffer = new byte[bufferSize];
    private int _start;
    private int _end;

    public long Position { get; private set; } = baseOffset;

    /// <summary>Reads more bytes after the unread ones; false at the end of the stream.</summary>
    private bool Fill()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }
        if (_end == _buffer.Length) Array.Resize(ref _buffer, _buffer.Length * 2); // only for a line longer than the buffer
        var read = stream.Read(_buffer, _end, _buffer.Length - _end);
        _end += read;
        return read > 0;
    }

    public bool AtEnd => _start == _end && !Fill();

    /// <summary>Bytes left to read (buffered plus the rest of the stream); null when the stream cannot tell.</summary>
    public long? Remaining => stream.CanSeek ? stream.Length - stream.Position + (_end - _start) : null;

    /// <summary>A line without its CR LF, or null at the end of the stream; lines longer than the limit are an error.</summary>
    public string? ReadLine(int maxLength = 64 * 1024)
    {
        while (true)
        {
            var span = _buffer.AsSpan(_start, _end - _start);
            var lf = span.IndexOf((byte)'\n');
            if (lf >= 0)
            {
                var length = lf > 0 && span[lf - 1] == '\r' ? lf - 1 : lf;
                var line = System.Text.Encoding.UTF8.GetString(span[..length]);
                _start += lf + 1;
                Position += lf + 1;
                return line;
            }
            if (span.Length > maxLength) throw new InvalidDataException($"a header line is longer than {maxLength} bytes");
            if (!Fill())
            {
                if (_start == _end) return null;
                var rest = System.Text.Encoding.UTF8.GetString(_buffer, _start, _end - _start);
                Position += _end - _start;
                _start = _end;
                return rest;
            }
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes; throws EndOfStreamException when the stream is shorter.</summary>
    public byte[] ReadExactly(int count)
    {
        var result = new byte[count];
        var copied = 0;
        while (copied < count)
        {
            if (_start == _end && !Fill()) throw new EndOfStreamException($"record is truncated: {count - copied} of {count} bytes missing");
            var n = Math.Min(count - copied, _end - _start);
            Buffer.BlockCopy(_buffer, _start, result, copied, n);
            _start += n;
            copied += n;
            Position += n;
        }
        return result;
    }

    public void Skip(long count)
    {
        while (count > 0)
        {
            if (_start == _end && !Fill()) throw new EndOfStreamException("record is truncated");
            var n = (int)Math.Min(count, _end - _start);
            _start += n;
            count -= n;
            Position += n;
        }
    }

    /// <summary>Advances to the next occurrence of <paramref name="marker"/> (left unread); false at the end of the stream.</summary>
    public bool SeekTo(ReadOnlySpan<byte> marker)
    {
        while (true)
        {
            var at = _buffer.AsSpan(_start, _end - _start).IndexOf(marker);
            if (at >= 0)
            {
                _start += at;
                Position += at;
                return true;
            }
            // Keep the last marker.Length - 1 bytes: the marker may straddle two reads.
            var keep = Math.Min(marker.Length - 1, _end - _start);
            Position += _end - _start - keep;
            _start = _end - keep;
            if (!Fill()) return false;
        }
    }

    /// <summary>The bytes buffered right now (at least one unless at the end), without consuming them.</summary>
    public ArraySegment<byte> PeekAvailable()
    {
        if (_start == _end) Fill();
        return new ArraySegment<byte>(_buffer, _start, _end - _start);
    }

    /// <summary>Gives back the last <paramref name="count"/> bytes consumed (they are still in the buffer).</summary>
    public void Unread(int count)
    {
        if (count > _start) throw new InvalidOperationException("cannot unread past the buffer start");
        _start -= count;
        Position -= count;
    }

    /// <summary>
    /// Moves to an absolute position of a seekable stream, dropping the buffer. Resynchronizing after a corrupt gzip
    /// member needs it: the inflater may have consumed input far past the point where the member went bad.
    /// </summary>
    public bool CanSeek => stream.CanSeek;

    public void Seek(long position)
    {
        if (!stream.CanSeek) throw new NotSupportedException("the stream cannot seek");
        stream.Position = position - (Position - (stream.Position - (_end - _start)));
        _start = _end = 0;
        Position = position;
    }

    /// <summary>Consumes CR and LF bytes (the blank lines that end a WARC record).</summary>
    public void SkipNewlines()
    {
        while (!AtEnd && _buffer[_start] is (byte)'\r' or (byte)'\n')
        {
            _start++;
            Position++;
        }
    }
}
