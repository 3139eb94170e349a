using System.Text;
using System.Text.Json;
using Pipeline.Cleaner;
using Pipeline.Dedup;
using Pipeline.Evaluator;
using Pipeline.Hosting;
using Pipeline.Tokenizer;

namespace Pipeline.Cli;

/// <summary>The end-of-run report: what each stage did, the loss curve and the evaluation scores (Markdown).</summary>
public static class RunReport
{
    public static string Write(RunLedger ledger, string runId, string runName, string folder, string? alignedRun = null)
    {
        var md = new StringBuilder($"# Run {runId}\n\n");
        if (ledger.Get($"crawl-summary:{runId}") is { } crawl)
            md.Append("## Crawl\n\n```json\n").Append(crawl).Append("\n```\n\n");

        var clean = new CleanReport();
        foreach (var json in ledger.Stats(runId, ShardCleaner.Stage)) clean.Add(JsonSerializer.Deserialize<CleanReport>(json)!);
        md.Append($"## Clean\n\n{clean.Input} pages in ({clean.InputChars:N0} characters), {clean.Kept} documents kept ({clean.KeptChars:N0} characters), {clean.PiiMasked} PII spans masked.\n\n");
        md.Append("| rule (in order) | documents removed | characters removed |\n|---|---:|---:|\n");
        foreach (var (rule, count) in clean.Removed) md.Append($"| {rule} | {count.Documents} | {count.Chars:N0} |\n");
        md.Append("\nKept by language: ").Append(string.Join(", ", clean.Languages.Select(kv => $"{kv.Key} {kv.Value}"))).Append("\n\n");

        var dedup = ledger.Stats(runId, ShardDeduplicator.Stage).Select(j => JsonSerializer.Deserialize<DedupStats>(j)!).ToList();
        md.Append($"## Dedup\n\n{dedup.Sum(d => d.Input)} documents in, {dedup.Sum(d => d.Kept)} kept, {dedup.Sum(d => d.Removed)} near-duplicates removed.\n\n");

        var tokens = ledger.Stats(runId, CorpusTokenizer.Stage).Select(j => JsonSerializer.Deserialize<TokenShardStats>(j)!).ToList();
        md.Append($"## Tokenize\n\nTokenizer {tokens.FirstOrDefault()?.TokenizerHash}: {tokens.Sum(t => t.TrainTokens):N0} training and {tokens.Sum(t => t.ValidationTokens):N0} validation tokens.\n\n");
        if (ledger.Get(CorpusTokenizer.ExcludedKey(runId)) is { } excludedJson)
            md.Append($"Decontamination (Pipeline:Decontaminate:Remove): {JsonSerializer.Deserialize<ExcludedDocuments>(excludedJson)!.Documents:N0} documents that contain evaluation examples were removed before tokenization.\n\n");
        if (tokens.Count > 0 && tokens.Sum(t => t.ValidationTokens) == 0)
            md.Append("**Warning: the validation split is empty; validation loss was measured on the tail of the training data.**\n\n");

        md.Append("## Training\n\n| step | loss | val loss | tokens/s |\n|---:|---:|---:|---:|\n");
        foreach (var step in ledger.Metrics(runName, "train").GroupBy(m => m.Step))
        {
            string Value(string name, string format = "F4") => step.FirstOrDefault(m => m.Name == name) is { Name: not null } m ? m.Value.ToString(format) : "";
            md.Append($"| {step.Key} | {Value("loss")} | {Value("val_loss")} | {Value("tokens_per_second", "N0")} |\n");
        }
        // Contamination next to each task's score: the share of its examples found in the training corpus.
        var contamination = ledger.Get(RunCoordinator.ContaminationKey(runId)) is { } contaminationJson
            ? JsonSerializer.Deserialize<List<TaskContamination>>(contaminationJson)!.ToDictionary(c => c.Task, c => $"{c.Contaminated}/{c.Examples}")
            : [];
        string Contaminated(string task) => contamination.TryGetValue(task, out var c) ? c : "";
        md.Append("\n## Evaluation\n\nThe contaminated column counts the task's examples whose 13-word or 50-character n-grams occur in the training corpus (before any removal).\n\n");
        md.Append("| step | task | contaminated | metric | value |\n|---:|---|---:|---|---:|\n");
        foreach (var (e, value) in EvalReport.WithStderr(ledger.Evals(runName))) md.Append($"| {e.Step} | {e.Task} | {Contaminated(e.Task)} | {e.Metric} | {value} |\n");
        if (alignedRun is not null)
        {
            md.Append($"\n## Alignment ({alignedRun})\n\n| task | contaminated | metric | value |\n|---|---:|---|---:|\n");
            foreach (var (e, value) in EvalReport.WithStderr(ledger.Evals(alignedRun))) md.Append($"| {e.Task} | {Contaminated(e.Task)} | {e.Metric} | {value} |\n");
        }

        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, "report.md");
        File.WriteAllText(path, md.ToString());
        return path;
    }
}
