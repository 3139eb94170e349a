using System.CommandLine;
using System.Text.Json;
using Pipeline.Contracts.Rows;
using Pipeline.Cleaner;
using Pipeline.Contracts.V1;
using Pipeline.Dedup;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Bpe;
using Pipeline.Tokenizer;
using Spectre.Console;

namespace Pipeline.Cli.Commands;

/// <summary>`pipeline clean`, `pipeline dedup`, `pipeline tokenizer train` and `pipeline tokenize`: one stage over shards on disk.</summary>
public static class CleanDedupTokenizeCommands
{
    private static Argument<string[]> Inputs(string what) => new("inputs") { Description = $"{what} shards (Parquet files or folders)", Arity = ArgumentArity.OneOrMore };

    /// <summary>Runs a shard stage over inputs, skipping those the ledger in --out has finished, with progress.</summary>
    private static async Task<List<StageResult>> RunStageAsync(string title, string stage, Ledger ledger, string runId, string[] inputs,
        Func<InputShard, Task<StageResult>> process, Func<StageResult, string> describe, CancellationToken ct)
    {
        ledger.Runs.Ensure(runId, runId, "{}");
        var shards = await CliInputs.ResolveAsync(inputs, runId, stage, ct);
        var results = new List<StageResult>();
        var step = new ShardStep(ledger, stage);
        await StageProgress.ForEachAsync(title, shards, async input =>
        {
            // Recorded under this command's run id, whatever the shard's own says.
            if (await step.RunAsync(input.Ref with { RunId = runId }, _ => process(input), null, ct) is not { } result) return $"{input.Ref.Uri} already done";
            results.Add(result);
            return $"{input.Ref.Uri}: {describe(result)}";
        });
        return results;
    }

    public static Command Clean(Option<string> outOption, Option<string> runOption, Option<string[]> setOption)
    {
        var inputs = Inputs("raw-page");
        var recipe = CliInputs.RecipeOption();
        var command = new Command("clean", "Extract, filter, mask PII and exact-dedup raw-page shards into clean shards under --out") { inputs, recipe, outOption, runOption, setOption };
        command.SetAction(async (parse, ct) =>
        {
            var outDir = CliInputs.OutDir(parse.GetValue(outOption)!);
            var context = PipelineContext.Open(outDir, CliInputs.Settings(parse.GetValue(setOption), parse.GetValue(recipe)));
            var cleaner = new ShardCleaner(context.Section<CleanerOptions>(CleanerOptions.Section), context.Store, context.Ledger);
            var runId = parse.GetValue(runOption)!;
            var ledger = context.Ledger;
            await RunStageAsync("clean", ShardCleaner.Stage, ledger, runId, parse.GetValue(inputs)!,
                input => cleaner.ProcessAsync(input.Ref, ct, input.Store),
                r => $"kept {((CleanReport)r.Stats!).Kept} of {((CleanReport)r.Stats!).Input}", ct);
            // The report covers every shard the ledger has cleaned for this run, this time or before, so a rerun that
            // had nothing left to do rewrites the same report rather than one of zeros.
            var total = new CleanReport();
            foreach (var stats in ledger.Artifacts.Stats(runId, ShardCleaner.Stage))
                total.Add(JsonSerializer.Deserialize<CleanReport>(stats)!);
            // Through the store's atomic write: confined to --out (a reports/ link leading out is refused) and never half-written.
            var store = context.Store;
            await store.CommitFileAsync("reports/clean-report.json", stream => JsonSerializer.SerializeAsync(stream, total, new JsonSerializerOptions { WriteIndented = true }, ct), ct);
            var reportPath = store.Resolve("reports/clean-report.json");
            var table = new Table().AddColumns("rule (in order)", "documents removed", "characters removed");
            foreach (var (rule, count) in total.RemovalsInOrder()) table.AddRow(rule, count.Documents.ToString("N0"), count.Chars.ToString("N0"));
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"[green]clean[/]: {total.Kept:N0} of {total.Input:N0} documents kept; report {Markup.Escape(reportPath)}");
            return 0;
        });
        return command;
    }

    public static Command Dedup(Option<string> outOption, Option<string> runOption, Option<string[]> setOption)
    {
        var inputs = new Argument<string[]>("inputs") { Description = "clean shards (Parquet files or folders)", Arity = ArgumentArity.ZeroOrMore };
        var stats = new Option<bool>("--stats") { Description = "Print the index size, documents seen and removed, cluster sizes and the S-curve" };
        var rebuild = new Option<bool>("--rebuild-index") { Description = "Rebuild the run's LSH index under --out from its kept dedup shards (after a corrupt index)" };
        var command = new Command("dedup", "MinHash-LSH near-duplicate removal of clean shards against everything the run (--run) kept before, under --out") { inputs, stats, rebuild, outOption, runOption, setOption };
        command.SetAction(async (parse, ct) =>
        {
            var outDir = CliInputs.OutDir(parse.GetValue(outOption)!);
            var context = PipelineContext.Open(outDir, CliInputs.Settings(parse.GetValue(setOption)));
            var options = context.Section<DedupOptions>(DedupOptions.Section);
            var store = context.Store;
            var runId = SafeName.Check(parse.GetValue(runOption)!, "--run");
            using var dedup = new ShardDeduplicator(options, store, context.Ledger);
            if (parse.GetValue(rebuild))
            {
                var count = await LshIndexMaintenance.RebuildAsync(options, store, runId, ct);
                AnsiConsole.MarkupLine($"[green]dedup[/]: index rebuilt from {count:N0} kept documents");
            }
            if (parse.GetValue(inputs) is { Length: > 0 } paths)
            {
                var results = await RunStageAsync("dedup", ShardDeduplicator.Stage, context.Ledger, runId, paths,
                    input => dedup.ProcessAsync(input.Ref, ct, input.Store),
                    r => $"kept {((DedupStats)r.Stats!).Kept} of {((DedupStats)r.Stats!).Input}", ct);
                var kept = results.Sum(r => ((DedupStats)r.Stats!).Kept);
                var input = results.Sum(r => ((DedupStats)r.Stats!).Input);
                AnsiConsole.MarkupLine($"[green]dedup[/]: {kept:N0} of {input:N0} documents kept");
            }
            if (parse.GetValue(stats)) await DedupIndexTools.PrintStatsAsync(options, store, runId, ct);
            return 0;
        });
        return command;
    }

    public static Command SemanticDedup(Option<string> outOption, Option<string> runOption, Option<string[]> setOption)
    {
        var inputs = Inputs("dedup");
        var defaults = new Contracts.SemanticDedupSettings();
        var epsilon = new Option<double>("--epsilon") { Description = "Remove a document whose cosine similarity to a kept one of its cluster exceeds 1 - epsilon", DefaultValueFactory = _ => defaults.Epsilon };
        var clusters = new Option<int>("--clusters") { Description = "k of k-means (0: one cluster per 200 documents)", DefaultValueFactory = _ => 0 };
        var prototypes = new Option<double>("--prototype-fraction") { Description = "D4: also prune this share of each cluster's documents nearest its centroid", DefaultValueFactory = _ => 0 };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Embed with this checkpoint of the project's model (mean of its last hidden states; its tokenizer found by hash under --out) instead of hashed n-grams" };
        var command = new Command("semdedup", "Semantic dedup (SemDeDup, D4) of dedup shards: the removed documents are recorded for the run (--run), so `pipeline tokenize` skips them; a summary under --out/reports")
            { inputs, epsilon, clusters, prototypes, checkpoint, outOption, runOption, setOption };
        command.SetAction(async (parse, ct) =>
        {
            var named = parse.GetValue(checkpoint) is { } path ? Path.GetFullPath(path) : null;
            if (named is not null && !Directory.Exists(named)) throw new ArgumentException($"--checkpoint '{named}' does not exist");
            var settings = new Contracts.SemanticDedupSettings(parse.GetValue(epsilon), parse.GetValue(clusters), parse.GetValue(prototypes), Checkpoint: named);
            if (settings.Epsilon is <= 0 or > 2) throw new ArgumentException($"--epsilon {settings.Epsilon}: must be above 0 and at most 2");
            if (settings.Clusters < 0) throw new ArgumentException($"--clusters {settings.Clusters}: must be 0 (automatic) or more");
            if (settings.PrototypeFraction is < 0 or >= 1) throw new ArgumentException($"--prototype-fraction {settings.PrototypeFraction}: must be at least 0 and below 1");
            var outDir = CliInputs.OutDir(parse.GetValue(outOption)!);
            var runId = SafeName.Check(parse.GetValue(runOption)!, "--run");
            var context = PipelineContext.Open(outDir, CliInputs.Settings(parse.GetValue(setOption)));
            context.Ledger.Runs.Ensure(runId, runId, "{}");
            var shards = await CliInputs.ResolveAsync(parse.GetValue(inputs)!, runId, "dedup", ct);
            using var source = new EmbeddingSource(context.Store, context.Ledger, named);
            var summary = await SemanticDedupStage.RunAsync(context.Store, context.Ledger, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, runId,
                shards.Select(s => (s.Ref, s.Store)).ToList(), settings, (await source.GetAsync(ct)).Embed, ct);
            var report = Path.Combine(outDir, "reports", $"semantic-dedup-{runId}.json");
            AtomicWrite.Text(report, System.Text.Json.JsonSerializer.Serialize(summary, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            AnsiConsole.MarkupLine($"[green]semdedup[/]: {summary.Documents:N0} documents in {summary.Clusters.Count:N0} clusters; {summary.Duplicates:N0} semantic duplicates and " +
                                   $"{summary.Prototypes:N0} prototypes removed for run {Markup.Escape(runId)}; summary at {Markup.Escape(report)}");
            return 0;
        });
        return command;
    }

    public static Command TokenizerTrain(Option<string> outOption, Option<string> runOption, Option<string[]> setOption)
    {
        var inputs = Inputs("dedup (or clean)");
        var vocab = new Option<int>("--vocab") { Description = "Vocabulary size (256 byte tokens + merges + special tokens)", DefaultValueFactory = _ => 32_000 };
        var command = new Command("train", "Learn a byte-level BPE vocabulary from document shards; writes tokenizer files under --out/tokenizers/<run>") { inputs, vocab, outOption, runOption, setOption };
        command.SetAction(async (parse, ct) =>
        {
            var outDir = CliInputs.OutDir(parse.GetValue(outOption)!);
            var runId = parse.GetValue(runOption)!;
            var context = PipelineContext.Open(outDir, CliInputs.Settings(parse.GetValue(setOption)));
            var ledger = context.Ledger;
            ledger.Runs.Ensure(runId, runId, "{}");
            var corpus = new CorpusTokenizer(context.Section<TokenizerOptions>(TokenizerOptions.Section), context.Store, ledger);
            var shards = await CliInputs.ResolveAsync(parse.GetValue(inputs)!, runId, "dedup", ct);
            var stores = shards.ToDictionary(s => s.Ref.ShardId, s => s.Store);
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var (uri, hash, size) = await corpus.TrainAsync(runId, shards.Select(s => s.Ref).ToList(), parse.GetValue(vocab), ct, r => stores[r.ShardId],
                new Progress<(int Merges, int Target)>(p => Console.Error.Write($"\rtokenizer: {p.Merges:N0}/{p.Target:N0} tokens   ")));
            Console.Error.WriteLine();
            AnsiConsole.MarkupLine($"[green]tokenizer[/]: {size:N0} tokens (hash {hash}) in {watch.Elapsed.TotalSeconds:F1} s at {Markup.Escape(Path.Combine(outDir, uri))}");
            return 0;
        });
        return command;
    }

    public static Command Tokenize(Option<string> outOption, Option<string> runOption, Option<string[]> setOption)
    {
        var inputs = Inputs("dedup");
        var tokenizerOption = new Option<string>("--tokenizer") { Description = "Folder of a trained tokenizer", Required = true };
        var alsoBin = new Option<bool>("--also-bin") { Description = "Also write llm.c's flat token files train.bin and val.bin beside the manifest" };
        var command = new Command("tokenize", "Encode document shards into token shards plus a manifest under --out") { inputs, tokenizerOption, alsoBin, outOption, runOption, setOption };
        command.SetAction(async (parse, ct) =>
        {
            var outDir = CliInputs.OutDir(parse.GetValue(outOption)!);
            var runId = parse.GetValue(runOption)!;
            var context = PipelineContext.Open(outDir, CliInputs.Settings(parse.GetValue(setOption)));
            var (store, ledger) = (context.Store, context.Ledger);
            var tokenizer = TextTokenizer.Load(parse.GetValue(tokenizerOption)!);
            var corpus = new CorpusTokenizer(context.Section<TokenizerOptions>(TokenizerOptions.Section), store, ledger);
            await RunStageAsync("tokenize", CorpusTokenizer.Stage, ledger, runId, parse.GetValue(inputs)!,
                input => corpus.ProcessAsync(input.Ref, tokenizer, ct, input.Store),
                r => $"{((TokenShardStats)r.Stats!).TrainTokens + ((TokenShardStats)r.Stats!).ValidationTokens:N0} tokens", ct);
            await corpus.WriteManifestAsync(runId, tokenizer, Path.GetFullPath(tokenizer.Folder), ct);
            var manifest = TokenManifestFile.Load(store.Resolve(RunArtifacts.TokenManifestUri(runId)));
            AnsiConsole.MarkupLine($"[green]tokenize[/]: {manifest.TrainTokens:N0} training and {manifest.ValidationTokens:N0} validation tokens; manifest {Markup.Escape(store.Resolve(RunArtifacts.TokenManifestUri(runId)))}");
            if (parse.GetValue(alsoBin))
            {
                var folder = Path.GetDirectoryName(store.Resolve(RunArtifacts.TokenManifestUri(runId)))!;
                var (train, validation) = await Interop.LlmcTokenFiles.WriteAsync(store, RunArtifacts.TokenManifestUri(runId), folder, ct);
                AnsiConsole.MarkupLine($"[green]tokenize[/]: llm.c files train.bin ({train:N0} tokens) and val.bin ({validation:N0}) in {Markup.Escape(folder)}");
            }
            return 0;
        });
        return command;
    }
}
