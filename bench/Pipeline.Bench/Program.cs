using Pipeline.Bench;

// A small harness that prints figures (docs/benchmarks.md records them with these commands):
//   dotnet run -c Release --project bench/Pipeline.Bench -- <benchmark> [arguments]
var benchmarks = new Dictionary<string, Func<string[], Task>>
{
    ["tokenizer"] = TokenizerBench.RunAsync,
    ["warc"] = WarcBench.RunAsync,
    ["crawl"] = CrawlBench.RunAsync,
    ["clean"] = CleanBench.RunAsync,
    ["extract"] = ExtractBench.RunAsync,
    ["recipes"] = RecipeBench.RunAsync,
    ["dedup"] = DedupBench.RunAsync,
    ["trainer"] = TrainerBench.RunAsync,
    ["generate"] = GenerateBench.RunAsync,
    ["align"] = AlignBench.RunAsync,
    ["shard-memory"] = ShardMemoryBench.RunAsync,
    ["ledger"] = LedgerBench.RunAsync,
    ["storage"] = StorageBench.RunAsync,
    ["cleaners"] = CompetingCleanersBench.RunAsync,
    ["gguf"] = GgufBench.RunAsync,
    ["quantize"] = QuantizeBench.RunAsync,
    ["reward"] = RewardBench.RunAsync,
    ["grpo"] = GrpoBench.RunAsync,
    ["rl"] = RlBench.RunAsync,
    ["semdedup"] = SemanticDedupBench.RunAsync,
    // Not a benchmark: what the default recipe makes of one page (extracted text, then the verdict), for tuning.
    ["explain"] = pages =>
    {
        var cleaner = new Pipeline.Cleaner.DocumentCleaner(new Pipeline.Cleaner.CleanerOptions(), Pipeline.Cleaner.ShardCleaner.LoadNgWords(""));
        foreach (var page in pages)
        {
            var html = File.ReadAllText(page);
            Console.WriteLine(Pipeline.Cleaner.TextExtractor.Extract(html).Text);
            var outcome = cleaner.Clean("d", "u", html);
            Console.WriteLine($"--- {page}: {(outcome.Document is null ? $"removed by {outcome.RemovedBy}: {outcome.Detail}" : "kept")}");
        }
        return Task.CompletedTask;
    },
};
if (args.Length == 0 || !benchmarks.TryGetValue(args[0], out var run))
{
    Console.Error.WriteLine($"usage: Pipeline.Bench <{string.Join('|', benchmarks.Keys)}> [arguments]");
    return 2;
}
await run(args[1..]);
return 0;
