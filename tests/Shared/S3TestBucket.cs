using Amazon.Runtime;
using Pipeline.Storage;

namespace Pipeline.Tests.Shared;

/// <summary>
/// A prefix of its own in the bucket of the test S3-compatible server (the one .ci/run starts with scripts/s3-local.sh:
/// s3rver on 127.0.0.1:4569, bucket pipeline-test; PIPELINE_TEST_S3 overrides the endpoint). s3rver checks
/// signatures against the key pair S3RVER/S3RVER.
/// </summary>
public sealed class S3TestBucket
{
    public static string Endpoint => Environment.GetEnvironmentVariable("PIPELINE_TEST_S3") ?? "http://127.0.0.1:4569";

    public const string Bucket = "pipeline-test";

    public static readonly AWSCredentials Credentials = new BasicAWSCredentials("S3RVER", "S3RVER");

    public string Prefix { get; } = "t-" + Guid.NewGuid().ToString("N")[..10];

    public S3StorageOptions Options(long partSize = 16 << 20) =>
        new() { Bucket = Bucket, Prefix = Prefix, ServiceUrl = Endpoint, PartSizeBytes = partSize };

    /// <summary>Pipeline:Storage settings for a process that keeps its files in this prefix.</summary>
    public Dictionary<string, string?> Settings => new()
    {
        ["Pipeline:Storage:Kind"] = "S3",
        ["Pipeline:Storage:S3:Bucket"] = Bucket,
        ["Pipeline:Storage:S3:Prefix"] = Prefix,
        ["Pipeline:Storage:S3:ServiceUrl"] = Endpoint,
    };

    /// <summary>The credentials as a deployment passes them: the standard AWS environment variables.</summary>
    public static Dictionary<string, string?> CredentialEnvironment => new()
    {
        ["AWS_ACCESS_KEY_ID"] = "S3RVER",
        ["AWS_SECRET_ACCESS_KEY"] = "S3RVER",
    };
}
