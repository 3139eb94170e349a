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
};
if (args.Length == 0 || !benchmarks.TryGetValue(args[0], out var run))
{
    Console.Error.WriteLine($"usage: Pipeline.Bench <{string.Join('|', benchmarks.Keys)}> [arguments]");
    return 2;
}
await run(args[1..]);
return 0;
