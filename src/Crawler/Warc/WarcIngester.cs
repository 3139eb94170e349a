using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Pipeline.Contracts.V1;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Contracts.Rows;

namespace Pipeline.Crawler.Warc;

/// <summary>What a WARC ingestion did.</summary>
public sealed class WarcSummary
{
    public long Records { get; set; }
    public long Pages { get; set; }
    public long Bytes { get; set; }
    public int Shards { get; set; }
    public double Seconds { get; set; }
    public Dictionary<string, long> Skipped { get; set; } = [];
    public List<string> Errors { get; set; } = [];

    internal void Skip(string reason) => Skipped[reason] = Skipped.GetValueOrDefault(reason) + 1;
}

/// <summary>
/// Turns WARC (response records) and WET (conversion records) files into raw-page shards, the same shards a live
/// crawl writes. Progress is kept per file in the run ledger (last committed record offset), so an ingestion that is
/// stopped or killed resumes after the last shard it wrote.
/// </summary>
public sealed class WarcIngester(CrawlOptions options, ShardStore store, Ledger ledger, ILogger logger)
{
    public const string Stage = Contracts.StageNames.Crawl;

    /// <summary>
    /// Progress is keyed by the file's identity, not its name: a/site.warc and b/site.warc, or the crawl-00001.warc.gz
    /// of two runs, are different inputs. Identity = full path, size and SHA-256 of the first 64 KiB (reading whole
    /// multi-GB archives twice just to name them would cost more than the ingestion).
    /// </summary>
    public static string Identity(string file)
    {
        var full = Path.GetFullPath(file);
        using var stream = File.OpenRead(full);
        var head = new byte[(int)Math.Min(stream.Length, 64 * 1024)];
        stream.ReadExactly(head);
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(head));
        return StableId.Of(full, stream.Length.ToString(), hash);
    }

    public async Task<WarcSummary> IngestAsync(string runId, IReadOnlyList<string> files, Func<ShardRef, Task> onShard, CancellationToken ct, IProgress<WarcSummary>? progress = null)
    {
        var summary = new WarcSummary();
        var watch = Stopwatch.StartNew();
        var configHash = StableId.ConfigHash(options);
        var reader = new WarcReader();
        foreach (var file in files)
        {
            var name = Path.GetFileName(file);
            var identity = Identity(file);
            var state = ledger.Documents.Get(LedgerKeys.WarcProgress(runId, identity)) is { } json ? JsonSerializer.Deserialize<FileProgress>(json)! : new FileProgress(-1, 0);
            var seq = state.Shards;
            var batch = new List<RawPage>();
            long batchChars = 0;
            long lastOffset = -1;

            async Task FlushAsync()
            {
                seq++;
                var shardId = StableId.Of(runId, "warc", identity, seq.ToString());
                var shard = await WebCrawler.WriteShardAsync(store, $"shards/crawl/{runId}/warc-{SafeStem(name)}-{identity[..8]}-{seq:D5}.parquet",
                    batch, new ShardDescriptor(shardId, Stage, configHash, [], runId), options, ct);
                // Shard first, then the progress mark: a crash in between rewrites the same shard, never skips one.
                ledger.Documents.Set(LedgerKeys.WarcProgress(runId, identity), JsonSerializer.Serialize(new FileProgress(lastOffset, seq)));
                summary.Shards++;
                logger.LogInformation("warc: shard {Shard} with {Pages} pages from {File}", shard.Uri, batch.Count, name);
                batch.Clear();
                batchChars = 0;
                await onShard(shard);
            }

            foreach (var record in reader.Read(file, error =>
            {
                logger.LogWarning("warc: skipped a record: {Error}", error);
                summary.Skip("corrupt-record");
                if (summary.Errors.Count < 100) summary.Errors.Add(error.ToString());
            }))
            {
                ct.ThrowIfCancellationRequested();
                summary.Records++;
                summary.Bytes += record.Block.Length;
                if (record.Offset <= state.LastOffset) continue; // already in a shard written before a restart
                var page = ToPage(record, name, summary);
                lastOffset = record.Offset;
                if (page is null) continue;
                batch.Add(page);
                batchChars += page.Html.Length;
                summary.Pages++;
                if (batch.Count >= options.PagesPerShard || batchChars >= options.CharsPerShard) await FlushAsync();
                if (summary.Records % 1000 == 0) progress?.Report(summary);
            }
            if (batch.Count > 0) await FlushAsync();
            else if (lastOffset > state.LastOffset) ledger.Documents.Set(LedgerKeys.WarcProgress(runId, identity), JsonSerializer.Serialize(new FileProgress(lastOffset, seq)));
        }
        summary.Seconds = watch.Elapsed.TotalSeconds;
        progress?.Report(summary);
        return summary;
    }

    /// <summary>The raw page of a response (HTML) or conversion (WET text) record; null, with a counted reason, otherwise.</summary>
    public RawPage? ToPage(WarcRecord record, string fileName, WarcSummary summary)
    {
        var url = record.TargetUri;
        var source = $"warc:{fileName}@{record.Offset}";
        if (record.Type == "conversion" && url is not null)
        {
            var text = System.Text.Encoding.UTF8.GetString(record.Block);
            return new RawPage { Url = url, FinalUrl = url, FetchTime = record.Date ?? default, Status = 200, ContentType = "text/plain", Charset = "utf-8", Html = text, Source = source };
        }
        if (url is not null && !Uri.TryCreate(url, UriKind.Absolute, out _))
        {
            summary.Skip("bad-url");
            return null;
        }
        if (record.Type != "response" || url is null)
        {
            summary.Skip($"record-{(record.Type.Length > 0 ? record.Type : "untyped")}");
            return null;
        }
        HttpPayload payload;
        try
        {
            payload = HttpResponseParser.Parse(record.Block, options.MaxBodyBytes);
        }
        catch (InvalidDataException e)
        {
            summary.Skip("bad-http");
            if (summary.Errors.Count < 100) summary.Errors.Add(new WarcError(fileName, record.Offset, e.Message).ToString());
            return null;
        }
        if (payload.Status is < 200 or >= 300)
        {
            summary.Skip($"http-{payload.Status}");
            return null;
        }
        if (!options.AcceptedContentTypes.Contains(payload.ContentType))
        {
            summary.Skip("content-type");
            return null;
        }
        var truncated = payload.Body.Length > options.MaxBodyBytes;
        var body = truncated ? payload.Body.AsSpan(0, options.MaxBodyBytes) : payload.Body;
        var (html, charset, charsetSource) = CharsetDecoder.Decode(body, payload.Charset);
        var (language, links) = QuickHtmlSignals.Scan(html);
        return new RawPage
        {
            Url = url,
            FinalUrl = url,
            FetchTime = record.Date ?? default,
            Status = payload.Status,
            ContentType = payload.ContentType,
            Charset = charset,
            CharsetSource = charsetSource,
            LanguageHint = language,
            Html = html,
            OutLinks = links,
            Source = source,
            Truncated = truncated,
        };
    }

    /// <summary>A file name as a shard-name part: letters, digits and '-' only, at most 40 characters.</summary>
    private static string SafeStem(string name)
    {
        var stem = new string(Path.GetFileNameWithoutExtension(name).Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray());
        return stem.Length > 40 ? stem[..40] : stem;
    }

    private sealed record FileProgress(long LastOffset, int Shards);
}
