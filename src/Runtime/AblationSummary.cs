namespace Pipeline.Runtime;

/// <summary>
/// An ablation's results as the ledger keeps them (<see cref="LedgerKeys.Ablation"/>), for the dashboard: its arms, each
/// arm's scores and the paired differences between arms (docs/ablation.md).
/// </summary>
public sealed record AblationSummary(string Name, long Budget, IReadOnlyList<int> Seeds, IReadOnlyList<AblationArmSummary> Arms,
    IReadOnlyList<AblationCell> Scores, IReadOnlyList<AblationDifference> Differences);

/// <summary>An arm: its settings, the documents it kept, its training tokens and the epochs of them the budget makes.</summary>
public sealed record AblationArmSummary(string Name, IReadOnlyDictionary<string, string?> Settings, long Documents, long TrainTokens, double Epochs);

/// <summary>An arm's score on a task metric (mean over seeds) and its bootstrap standard error.</summary>
public sealed record AblationCell(string Arm, string Task, string Metric, double Value, double Stderr);

/// <summary>Arm minus baseline on a task metric, with its paired-bootstrap 95 % interval.</summary>
public sealed record AblationDifference(string Task, string Metric, string Baseline, string Arm, double Value, double Low, double High)
{
    public bool Significant => Low > 0 || High < 0;
}
