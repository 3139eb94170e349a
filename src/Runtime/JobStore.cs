using System.Text.Json;

namespace Pipeline.Runtime;

/// <summary>A long job as the ledger keeps it: its request, its state and the error.</summary>
public sealed record LedgerJob<TRequest>(TRequest Request, JobState State, string? Error);

/// <summary>The state of a long job; the ledger stores its lower-case name, as the dashboard and `pipeline status` read it.</summary>
[System.Text.Json.Serialization.JsonConverter(typeof(Contracts.NamedEnumConverter<JobState>))]
public enum JobState
{
    Running,
    Completed,
    Failed,
    Cancelled,
}

public static class JobStates
{
    /// <summary>The name the ledger and messages use for a state ("completed").</summary>
    public static string Name(this JobState state) => Contracts.NamedEnum.Name(state);
}

/// <summary>A long job of any kind, without its request: what `pipeline status` and the dashboard list.</summary>
public sealed record JobRecord(string Kind, string Name, JobState State, string? Error)
{
    /// <summary>How the job is named to users ("training:sample-gpt").</summary>
    public string Key => LedgerKeys.Job(Kind, Name);
}

/// <summary>
/// The long jobs (crawls, training runs, alignment jobs) in the ledger, typed: one record per kind and name, written
/// by the job workers and read by the coordinator, `pipeline status` and the dashboard. Nobody parses a job's JSON by hand.
/// </summary>
public sealed class JobStore(Ledger ledger)
{
    public LedgerJob<TRequest>? Get<TRequest>(string kind, string name) =>
        ledger.Documents.Get(LedgerKeys.Job(kind, name)) is { } json ? JsonSerializer.Deserialize<LedgerJob<TRequest>>(json) : null;

    public void Put<TRequest>(string kind, string name, LedgerJob<TRequest> job) => ledger.Documents.Set(LedgerKeys.Job(kind, name), JsonSerializer.Serialize(job));

    /// <summary>The names of a kind's jobs, those starting with <paramref name="prefix"/> when given.</summary>
    public IReadOnlyList<string> Names(string kind, string prefix = "") =>
        ledger.Documents.KeysWithPrefix(LedgerKeys.Job(kind, prefix)).Select(k => k[(kind.Length + 1)..]).ToList();

    /// <summary>Every job of a kind (every kind when null) whose name starts with <paramref name="prefix"/>, without requests.</summary>
    public IReadOnlyList<JobRecord> List(string? kind = null, string prefix = "")
    {
        var jobs = new List<JobRecord>();
        foreach (var k in kind is null ? JobKinds.All : [kind])
            foreach (var name in Names(k, prefix))
                if (Get<JsonElement>(k, name) is { } job) jobs.Add(new JobRecord(k, name, job.State, job.Error));
        return jobs;
    }
}
