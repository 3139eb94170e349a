namespace Pipeline.Cleaner.Filters;

/// <summary>
/// One step of a cleaning recipe (datatrove's pipeline step): it keeps the document, possibly with lines removed, or
/// rejects it with a reason. Thresholds are settable properties with the published defaults.
/// </summary>
public interface ICleanerStep
{
    string Name { get; }

    StepResult Apply(Document document);
}

/// <summary>What a step did: <see cref="Kept"/> is the document to go on with, or <see cref="Reason"/> says why it was dropped.</summary>
public readonly record struct StepResult(Document? Kept, string? Reason)
{
    public static StepResult Keep(Document document) => new(document, null);
    public static StepResult Reject(string reason) => new(null, reason);
}

/// <summary>A document-level rule: keeps the document as it is, or rejects it.</summary>
public interface IDocumentFilter : ICleanerStep
{
    /// <summary>Why the document is rejected, or null to keep it.</summary>
    string? Reject(Document document);

    StepResult ICleanerStep.Apply(Document document) => Reject(document) is { } reason ? StepResult.Reject(reason) : StepResult.Keep(document);
}

/// <summary>A line-level rule that removes lines, or rejects the document when too much went.</summary>
public interface ILineFilter : ICleanerStep
{
    /// <summary>Returns the kept text, or null when the document should be dropped.</summary>
    string? KeepLines(Document document);

    StepResult ICleanerStep.Apply(Document document)
    {
        var kept = KeepLines(document);
        if (string.IsNullOrEmpty(kept)) return StepResult.Reject("too little left");
        return StepResult.Keep(kept == document.Text ? document : document.WithText(kept));
    }
}

/// <summary>
/// A step that loads what its settings name (a model) once they are set, so that a bad setting fails when the recipe
/// is read, naming it, not on the first document.
/// </summary>
public interface IPreparedStep
{
    void Prepare(string where);
}
