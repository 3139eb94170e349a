namespace Pipeline.Crawler.Warc;

/// <summary>
/// One WARC record: its named fields and its block (for a response record, the raw HTTP response). The offset is
/// where the record starts in the file (for .warc.gz, the start of its gzip member, as Common Crawl indexes cite).
/// </summary>
public sealed record WarcRecord(long Offset, IReadOnlyDictionary<string, string> Fields, byte[] Block)
{
    public string Type => Fields.GetValueOrDefault("WARC-Type", "");
    public string? TargetUri => Fields.GetValueOrDefault("WARC-Target-URI")?.Trim('<', '>');
    public DateTime? Date => DateTime.TryParse(Fields.GetValueOrDefault("WARC-Date"), null, System.Globalization.DateTimeStyles.AdjustToUniversal, out var d) ? d : null;
}

/// <summary>A record that could not be read; the reader goes on with the next one.</summary>
public sealed record WarcError(string File, long Offset, string Reason)
{
    public override string ToString() => Pipeline.Storage.Printable.Line($"{File} @ {Offset}: {Reason}");
}
