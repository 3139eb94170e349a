namespace Pipeline.Contracts;

/// <summary>Version of the message contracts in <c>Pipeline.Contracts.V1</c>.</summary>
public static class Schema
{
    public const int Version = 1;
}
