namespace Pipeline.Cleaner.Filters;

/// <summary>A document-level rule, datatrove-style: a small class whose thresholds are properties with the published defaults.</summary>
public interface IDocumentFilter
{
    string Name { get; }

    /// <summary>Why the document is rejected, or null to keep it.</summary>
    string? Reject(Document document);
}

/// <summary>A line-level rule that rewrites a document's text (removing lines), or rejects it if too much went.</summary>
public interface ILineFilter
{
    string Name { get; }

    /// <summary>Returns the kept text, or null when the document should be dropped.</summary>
    string? Apply(Document document);
}
