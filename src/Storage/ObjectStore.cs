using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace Pipeline.Storage;

/// <summary>Where a <see cref="ShardStore"/> keeps what it writes when its folder is only a local cache.</summary>
public interface IObjectStore
{
    /// <summary>How an object is named to the user (s3://bucket/prefix/key), for errors and logs.</summary>
    string Describe(string key);

    /// <summary>Stores a complete local file under <paramref name="key"/>; the object appears only when whole.</summary>
    Task UploadAsync(string key, string localPath, CancellationToken ct);

    /// <summary>Copies the object to <paramref name="localPath"/>; false when there is no such object.</summary>
    Task<bool> TryDownloadAsync(string key, string localPath, CancellationToken ct);

    /// <summary>The keys under <paramref name="prefix"/> (a folder URI ending in '/'), in no particular order.</summary>
    IAsyncEnumerable<string> ListAsync(string prefix, CancellationToken ct);

    /// <summary>Removes an object; removing one that does not exist is not an error.</summary>
    Task DeleteAsync(string key, CancellationToken ct);

    /// <summary>
    /// Checks at start-up that the store answers with these credentials and the bucket exists, so a service fails at
    /// once naming the problem instead of when work arrives; throws <see cref="InvalidOperationException"/>.
    /// </summary>
    Task CheckAsync(CancellationToken ct);
}

/// <summary>The S3 settings under Pipeline:Storage:S3 (credentials come from the AWS environment or profile chain).</summary>
public sealed class S3StorageOptions
{
    public string Bucket { get; set; } = "";

    /// <summary>Key prefix under which this data root lives (for example "pipeline/"); every key is under it.</summary>
    public string Prefix { get; set; } = "";

    /// <summary>Endpoint of an S3-compatible server (MinIO, s3rver); none = AWS for <see cref="Region"/>.</summary>
    public string? ServiceUrl { get; set; }

    public string Region { get; set; } = "us-east-1";

    /// <summary>bucket in the path (MinIO and most S3-compatible servers) rather than in the host name.</summary>
    public bool ForcePathStyle { get; set; } = true;

    /// <summary>Files larger than this go up in parts (multipart upload), each part this size.</summary>
    public long PartSizeBytes { get; set; } = 16 << 20;
}

/// <summary>
/// S3 or an S3-compatible server through AWSSDK.S3. Files larger than a part go up as multipart uploads, whose object
/// exists only once the upload completes; a failed one is aborted (a process killed mid-upload leaves parts for the
/// bucket's lifecycle rule on incomplete multipart uploads, never a partial object).
/// </summary>
public sealed class S3ObjectStore : IObjectStore, IDisposable
{
    private readonly AmazonS3Client _client;
    private readonly S3StorageOptions _options;
    private readonly string _prefix;

    /// <param name="credentials">null: the standard AWS chain (environment, profile, instance role), never a config file.</param>
    public S3ObjectStore(S3StorageOptions options, AWSCredentials? credentials = null)
    {
        if (string.IsNullOrWhiteSpace(options.Bucket)) throw new ArgumentException("Pipeline:Storage:S3:Bucket is required when Pipeline:Storage:Kind is S3");
        _options = options;
        _prefix = options.Prefix.Length == 0 || options.Prefix.EndsWith('/') ? options.Prefix : options.Prefix + "/";
        var config = new AmazonS3Config
        {
            ForcePathStyle = options.ForcePathStyle,
            // Checksums only where S3 requires them: S3-compatible servers do not all take the SDK's trailing CRCs.
            // Every shard carries its own SHA-256, checked after download.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        if (options.ServiceUrl is { Length: > 0 } url)
        {
            config.ServiceURL = url;
            config.AuthenticationRegion = options.Region;
        }
        else
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(options.Region);
        }
        _client = credentials is null ? new AmazonS3Client(config) : new AmazonS3Client(credentials, config);
    }

    public string Describe(string key) => $"s3://{_options.Bucket}/{_prefix}{key}";

    public async Task CheckAsync(CancellationToken ct)
    {
        var where = Describe("") + (_options.ServiceUrl is { Length: > 0 } url ? $" at {url}" : "");
        try
        {
            // A server error (5xx) is the server's passing trouble, not a wrong setting: asked again a few times.
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    // A prefix that holds nothing: the answer says whether the bucket and credentials are right without
                    // reading a listing of what is there (s3rver fails listing a busy prefix with MaxKeys=1).
                    await _client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = _options.Bucket, Prefix = _prefix + ".startup-check/", MaxKeys = 1 }, ct);
                    return;
                }
                catch (AmazonS3Exception e) when ((int)e.StatusCode >= 500 && attempt < 5)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(500 * attempt), ct);
                }
            }
        }
        catch (AmazonS3Exception e)
        {
            var hint = e.ErrorCode switch
            {
                "NoSuchBucket" => "the bucket does not exist; create it or set Pipeline:Storage:S3:Bucket",
                "InvalidAccessKeyId" or "SignatureDoesNotMatch" or "AccessDenied" => "the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or the AWS profile) are refused",
                _ => e.Message,
            };
            throw new InvalidOperationException($"storage {where}: {e.ErrorCode ?? e.StatusCode.ToString()}: {hint}", e);
        }
        catch (Exception e) when (e is AmazonServiceException or AmazonClientException or HttpRequestException or System.Net.Sockets.SocketException)
        {
            throw new InvalidOperationException($"storage {where}: {Innermost(e)}", e);
        }
    }

    private static string Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e.Message;
    }

    /// <summary>Parts sent in multipart uploads so far (progress and tests).</summary>
    public long PartsUploaded => Interlocked.Read(ref _partsUploaded);

    private long _partsUploaded;

    public async Task UploadAsync(string key, string localPath, CancellationToken ct)
    {
        // Whole-payload signing, not aws-chunked encoding: S3-compatible servers such as s3rver store an aws-chunked
        // body as it came, chunk signatures included. TransferUtility cannot turn it off for parts, so the multipart
        // upload is written out here.
        var length = new FileInfo(localPath).Length;
        if (length <= _options.PartSizeBytes)
        {
            await _client.PutObjectAsync(new PutObjectRequest { BucketName = _options.Bucket, Key = _prefix + key, FilePath = localPath, UseChunkEncoding = false }, ct);
            return;
        }
        var upload = await _client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = _options.Bucket, Key = _prefix + key }, ct);
        try
        {
            var parts = new List<PartETag>();
            for (long offset = 0, number = 1; offset < length; offset += _options.PartSizeBytes, number++)
            {
                var part = await _client.UploadPartAsync(new UploadPartRequest
                {
                    BucketName = _options.Bucket, Key = _prefix + key, UploadId = upload.UploadId, PartNumber = (int)number,
                    FilePath = localPath, FilePosition = offset, PartSize = Math.Min(_options.PartSizeBytes, length - offset), UseChunkEncoding = false,
                }, ct);
                parts.Add(new PartETag((int)number, part.ETag));
                Interlocked.Increment(ref _partsUploaded);
            }
            await _client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
            {
                BucketName = _options.Bucket, Key = _prefix + key, UploadId = upload.UploadId, PartETags = parts,
            }, ct);
        }
        catch
        {
            // The object never appeared; its parts go too (not cancellable: they would stay billed).
            await _client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = _options.Bucket, Key = _prefix + key, UploadId = upload.UploadId }, CancellationToken.None);
            throw;
        }
    }

    public async Task<bool> TryDownloadAsync(string key, string localPath, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                using var response = await _client.GetObjectAsync(_options.Bucket, _prefix + key, ct);
                await using var file = new FileStream(localPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
                await response.ResponseStream.CopyToAsync(file, ct);
                return true;
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
                return false;
            }
            catch (Exception e) when (attempt < 4 && !ct.IsCancellationRequested && e is AmazonClientException or IOException or HttpRequestException)
            {
                // A body cut short or not matching its MD5: a server that replaces objects in place (s3rver) was
                // mid-overwrite of an object its writer replaces as it goes (a manifest), or the connection dropped.
                // AWS and MinIO replace atomically; a second read gets the whole new version.
                await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt), ct);
            }
        }
    }

    public async IAsyncEnumerable<string> ListAsync(string prefix, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var request = new ListObjectsV2Request { BucketName = _options.Bucket, Prefix = _prefix + prefix };
        ListObjectsV2Response response;
        do
        {
            response = await _client.ListObjectsV2Async(request, ct);
            foreach (var item in response.S3Objects ?? []) yield return item.Key[_prefix.Length..];
            request.ContinuationToken = response.NextContinuationToken;
        }
        while (response.IsTruncated == true);
    }

    public Task DeleteAsync(string key, CancellationToken ct) =>
        _client.DeleteObjectAsync(_options.Bucket, _prefix + key, ct);

    /// <summary>Puts raw bytes under a key (tests: an object changed after it was announced).</summary>
    public Task PutBytesAsync(string key, byte[] bytes, CancellationToken ct) =>
        _client.PutObjectAsync(new PutObjectRequest { BucketName = _options.Bucket, Key = _prefix + key, InputStream = new MemoryStream(bytes), UseChunkEncoding = false }, ct);

    public void Dispose() => _client.Dispose();
}
