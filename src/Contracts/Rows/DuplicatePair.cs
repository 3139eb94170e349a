namespace Pipeline.Contracts.Rows;

/// <summary>A row of the duplicates table: which document was removed in favour of which.</summary>
public sealed class DuplicatePair
{
    public string RemovedId { get; set; } = "";
    public string KeptId { get; set; } = "";
    public double EstimatedJaccard { get; set; }
    public string RemovedUrl { get; set; } = "";
}
