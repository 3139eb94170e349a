using System.CommandLine;
using Microsoft.Extensions.Hosting;
using Parquet.Serialization;
using Pipeline.Cli;
using Pipeline.Cli.Commands;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Storage;
using Pipeline.Bpe;
using Spectre.Console;

// Off a terminal (a log file, a pipe) or with NO_COLOR set: no colour codes in the output (no-color.org).
if (Console.IsOutputRedirected || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR")))
{
    AnsiConsole.Profile.Capabilities.Ansi = false;
    AnsiConsole.Profile.Capabilities.ColorSystem = ColorSystem.NoColors;
    // A file has no width: tables are written whole instead of wrapped at 80 columns.
    if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 1000;
}

var root = new RootCommand("Pipeline: crawl, clean, dedup, tokenize, train and evaluate a language model, stage by stage over a message bus.");

var outOption = new Option<string>("--out") { Description = "Folder for everything the run writes (shards, ledger, checkpoints, reports)", DefaultValueFactory = _ => "runs/sample" };
var seedOption = new Option<string[]>("--seed") { Description = "Seed URL(s); without one, the shipped sample site is served on loopback and crawled", AllowMultipleArgumentsPerToken = true };
var maxPagesOption = new Option<int>("--max-pages") { Description = "Stop the crawl after this many pages", DefaultValueFactory = _ => 400 };
var crawlPartsOption = new Option<int>("--crawl-parts") { Description = "Split the crawl by host into this many jobs, so as many crawler services share it (the parts share --max-pages)", DefaultValueFactory = _ => 1 };
var vocabOption = new Option<int>("--vocab") { Description = "Tokenizer vocabulary size", DefaultValueFactory = _ => 2048 };
var stepsOption = new Option<int>("--steps") { Description = "Training steps of the sample model", DefaultValueFactory = _ => 300 };
var quietOption = new Option<bool>("--quiet") { Description = "Only warnings and errors in the log" };
var evalTasksOption = new Option<string[]>("--eval-tasks") { Description = "Task files scored on every checkpoint (default: the repository's tasks/*.yaml; 'none' for only the validation loss)", AllowMultipleArgumentsPerToken = true };
var servicesOption = new Option<string[]>("--services") { Description = "Services this process hosts (default: all); 'none' to only coordinate services started with `pipeline serve` over RabbitMQ on the same --out", AllowMultipleArgumentsPerToken = true };
var recipeOption = CliInputs.RecipeOption();
var releaseOption = new Option<string[]>("--release") { Description = "Release the final checkpoint as each target: int8, int4 (a quantized checkpoint, evaluated like the others) or gguf:f32|f16|q8_0|q4_0 (a llama.cpp file under releases/)", AllowMultipleArgumentsPerToken = true };
var alignOption = new Option<string[]>("--align") { Description = "The alignment phase, in order: sft or dpo (LoRA, of the final checkpoint), then reward (a reward model), then grpo or ppo (rewarded by that model, or without one by char_f1 against the prompts' answers); e.g. sft,reward,ppo or sft,grpo; 'none' for no alignment (default: sft)", AllowMultipleArgumentsPerToken = true };
var setOption = new Option<string[]>("--set") { Description = "Configuration override KEY=VALUE, repeatable (e.g. --set Pipeline:Crawler:PerHostConcurrency=1); wins over pipeline.json and PIPELINE__* variables" };

var runNameOption = new Option<string?>("--run") { Description = "The run's name (default: the run this --out started, else one from the folder's name); many runs can share one ledger, bucket and broker" };
var run = new Command("run", "Run the whole chain in one process on the in-memory bus (resumes when run again with the same --out)")
{
    runNameOption, outOption, seedOption, maxPagesOption, crawlPartsOption, vocabOption, stepsOption, quietOption, evalTasksOption, servicesOption, releaseOption, alignOption, recipeOption, setOption,
};
run.SetAction(async (parse, ct) =>
{
    var report = await EmbeddedRun.RunAsync(new EmbeddedRunOptions
    {
        OutDir = CliInputs.OutDir(parse.GetValue(outOption)!),
        RunId = parse.GetValue(runNameOption),
        OnRunName = name => Console.WriteLine($"run: {name}"),
        Seeds = parse.GetValue(seedOption) ?? [],
        MaxPages = parse.GetValue(maxPagesOption),
        CrawlParts = parse.GetValue(crawlPartsOption),
        VocabSize = parse.GetValue(vocabOption),
        Steps = parse.GetValue(stepsOption),
        Quiet = parse.GetValue(quietOption),
        Settings = CliInputs.Settings(parse.GetValue(setOption), parse.GetValue(recipeOption)),
        EvalTasks = parse.GetValue(evalTasksOption) is { Length: > 0 } tasks ? tasks.Where(t => t != "none").ToList() : null,
        HostedServices = parse.GetValue(servicesOption) is { Length: > 0 } services ? services.Where(s => s != "none").ToList() : null,
        Release = (parse.GetValue(releaseOption) ?? []).SelectMany(r => r.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList(),
        Align = parse.GetValue(alignOption) is { Length: > 0 } align ? align.SelectMany(a => a.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList() : null,
    }, ct);
    AnsiConsole.MarkupLine($"[green]done[/]: report at {Markup.Escape(report)}");
    return 0;
});
root.Subcommands.Add(run);

var ablate = new Command("ablate", "Ablation: the same raw shards through each arm's data stages, one tokenizer, the same model, seeds and token budget per arm; scores with paired bootstrap intervals in reports/ablation.md (resumes)")
{
    AblateOptions.Raw, AblateOptions.Name, AblateOptions.Arms, AblateOptions.Steps, AblateOptions.Seeds, AblateOptions.Tokenizer, vocabOption, evalTasksOption, servicesOption, outOption, setOption,
};
ablate.SetAction(async (parse, ct) =>
{
    using var logging = PipelineContext.Logging(quiet: false);
    var report = await Ablation.RunAsync(new AblationOptions(parse.GetValue(AblateOptions.Name)!, parse.GetValue(AblateOptions.Raw)!,
        (parse.GetValue(AblateOptions.Arms) ?? []).Select(AblationArm.Parse).ToList(), CliInputs.OutDir(parse.GetValue(outOption)!))
    {
        Steps = parse.GetValue(AblateOptions.Steps),
        Seeds = parse.GetValue(AblateOptions.Seeds),
        VocabSize = parse.GetValue(vocabOption),
        Tasks = parse.GetValue(evalTasksOption) is { Length: > 0 } tasks ? tasks.Where(t => t != "none").ToList() : SampleSite.ShippedTasks(),
        Tokenizer = parse.GetValue(AblateOptions.Tokenizer),
        Services = parse.GetValue(servicesOption) is { Length: > 0 } services ? services.Where(s => s != "none").ToList() : ["trainer"],
        Settings = CliInputs.Settings(parse.GetValue(setOption)),
    }, logging.CreateLogger("ablate"), ct);
    AnsiConsole.MarkupLine($"[green]ablate[/]: report at {Markup.Escape(report)}");
    return 0;
});
root.Subcommands.Add(ablate);

var graph = new Command("graph", "Print the run's graph: every stage and job, what it reads and writes, what it waits for, and which service does it");
graph.SetAction(_ => Console.Write(PipelineGraph.Describe()));
root.Subcommands.Add(graph);

var stageArgument = new Argument<string>("stage") { Description = "crawler, cleaner, dedup, tokenizer, trainer (with alignment jobs), evaluator, or dashboard (the web view of the runs in the ledger)" };
var serve = new Command("serve", "Host one stage as its own process on the configured transport (Pipeline:Transport=RabbitMq)") { stageArgument, outOption, setOption };
serve.SetAction(async (parse, ct) =>
{
    var overrides = new Dictionary<string, string?>(CliInputs.Settings(parse.GetValue(setOption)))
    {
        ["Pipeline:DataRoot"] = CliInputs.OutDir(parse.GetValue(outOption)!),
    };
    if (parse.GetValue(stageArgument) == "dashboard")
    {
        await DashboardCommand.RunAsync(overrides, ct);
        return 0;
    }
    var modules = Stages.ForService(parse.GetValue(stageArgument)!);
    using var host = PipelineHost.Build(modules, overrides, quiet: false);
    await host.StartCheckedAsync($"serve {parse.GetValue(stageArgument)}", ct);
    await host.WaitForShutdownAsync(ct);
    return 0;
});
root.Subcommands.Add(serve);

var status = new Command("status", "Print the run ledger: runs, shards per stage, rows and bytes") { outOption };
status.SetAction(parse =>
{
    var ledger = PipelineContext.Open(Path.GetFullPath(parse.GetValue(outOption)!), existingRun: true).Ledger;
    var table = new Table().AddColumns("run", "state", "stage", "shards", "rows", "bytes");
    // Every run in the ledger, also those with no shard yet (just started, or only coordinating so far).
    foreach (var r in ledger.Runs.List())
    {
        if (r.Stages.Count == 0) table.AddRow(Markup.Escape(r.RunId), Markup.Escape(r.State), "-", "0", "0", "0");
        foreach (var s in r.Stages)
            table.AddRow(Markup.Escape(r.RunId), Markup.Escape(r.State), s.Stage, s.Shards.ToString(), s.Rows.ToString("N0"), s.Bytes.ToString("N0"));
    }
    AnsiConsole.Write(table);
    // Long jobs (crawls, training runs, alignment jobs) as their workers recorded them.
    var jobs = new Table().AddColumns("job", "state", "error");
    foreach (var job in ledger.Jobs.List())
        jobs.AddRow(Markup.Escape(job.Key), job.State.Name(), Markup.Escape(job.Error ?? ""));
    if (jobs.Rows.Count > 0) AnsiConsole.Write(jobs);
    return 0;
});
root.Subcommands.Add(status);

var shardArgument = new Argument<string>("shard") { Description = "Path of a Parquet shard" };
var rowsOption = new Option<int>("--rows") { Description = "Rows to show", DefaultValueFactory = _ => 3 };
var inspect = new Command("inspect", "Show a shard's schema, row count and first rows") { shardArgument, rowsOption };
inspect.SetAction(async (parse, ct) =>
{
    var path = parse.GetValue(shardArgument)!;
    if (!File.Exists(path))
    {
        Console.Error.WriteLine($"error: inspect: '{path}' does not exist");
        return 2;
    }
    await using var stream = File.OpenRead(path);
    var result = await NamingTheFileAsync(() => ParquetSerializer.DeserializeUntypedAsync(stream, cancellationToken: ct), path);
    Console.WriteLine($"{path}: {result.Data.Count} rows");
    Console.WriteLine($"schema: {string.Join(", ", result.Schema.DataFields.Select(f => $"{f.Name}:{f.ClrType.Name}"))}");
    foreach (var row in result.Data.Take(parse.GetValue(rowsOption)))
        Console.WriteLine(string.Join(" | ", row.Select(kv => $"{kv.Key}={Shorten(kv.Value)}")));
    return 0;
});
root.Subcommands.Add(inspect);

var tokenizerFolder = new Option<string>("--tokenizer") { Description = "Folder of a trained tokenizer", Required = true };
var textArgument = new Argument<string>("text");
var encode = new Command("encode", "Encode text and show the pieces") { tokenizerFolder, textArgument };
encode.SetAction(parse =>
{
    var tokenizer = TextTokenizer.Load(parse.GetValue(tokenizerFolder)!);
    foreach (var (id, piece) in tokenizer.Pieces(parse.GetValue(textArgument)!)) Console.WriteLine($"{id,6}  {piece}");
    return 0;
});
var runOption = new Option<string>("--run") { Description = "Run id the shards are recorded under in the ledger", DefaultValueFactory = _ => "cli" };
var tokenizerCommand = new Command("tokenizer", "Tokenizer tools") { encode, CleanDedupTokenizeCommands.TokenizerTrain(outOption, runOption, setOption) };
root.Subcommands.Add(tokenizerCommand);
root.Subcommands.Add(CrawlCommand.Create(outOption, runOption, setOption));
root.Subcommands.Add(CleanDedupTokenizeCommands.Clean(outOption, runOption, setOption));
root.Subcommands.Add(CleanDedupTokenizeCommands.Dedup(outOption, runOption, setOption));
root.Subcommands.Add(CleanDedupTokenizeCommands.SemanticDedup(outOption, runOption, setOption));
root.Subcommands.Add(CleanDedupTokenizeCommands.Tokenize(outOption, runOption, setOption));
root.Subcommands.Add(ModelCommands.Train(outOption, runOption));
root.Subcommands.Add(ModelCommands.Distill(outOption, runOption));
root.Subcommands.Add(ModelCommands.Sample());
root.Subcommands.Add(ModelCommands.Export(outOption));
root.Subcommands.Add(ModelCommands.Quantize(outOption));
root.Subcommands.Add(ModelCommands.Import(outOption));
root.Subcommands.Add(EvalCommands.Create(outOption));
root.Subcommands.Add(AlignCommands.Align(outOption));
root.Subcommands.Add(AlignCommands.Lora(outOption));
root.Subcommands.Add(AlignCommands.Reward());
root.Subcommands.Add(QualityCommands.Create());

var parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    // Words the command does not take (an unknown flag, --steps abc) are bad input like any other: one `error:` line
    // and exit 2, with where to look, instead of System.CommandLine's help page and exit 1.
    var command = string.Join(' ', parsed.CommandResult.Command.Parents.OfType<Command>().Reverse().Skip(1).Append(parsed.CommandResult.Command).Select(c => c.Name));
    Console.Error.WriteLine($"error: {Pipeline.Storage.Printable.Line(string.Join("; ", parsed.Errors.Select(e => e.Message.Replace(Environment.NewLine, " ").Trim())))} " +
        $"(see `{command} --help`)");
    return 2;
}

try
{
    // SIGINT/SIGTERM cancel the command's token; the command then has this long to stop cleanly (a training run
    // writes a checkpoint at its current step, a crawl commits its frontier) before the process is ended.
    return await parsed.InvokeAsync(new InvocationConfiguration
    {
        EnableDefaultExceptionHandler = false,
        ProcessTerminationTimeout = TimeSpan.FromSeconds(25),
    });
}
catch (OperationCanceledException e)
{
    // A job that stopped says where it stopped (its message); a plain cancellation says only that it was interrupted.
    var detail = e.Message.StartsWith("The operation was canceled", StringComparison.Ordinal) ? "" : $" ({e.Message})";
    Console.Error.WriteLine($"stopped: interrupted{detail}; run the same command again to continue");
    return 130;
}
catch (Exception e) when (CliErrors.IsUserError(e))
{
    // Bad input: one clear line naming the input and the problem, not a stack trace.
    Console.Error.WriteLine($"error: {CliErrors.Describe(e, DataRoot(parsed))}");
    return 2;
}
catch (Exception e)
{
    // Anything else is still one line and exit 2 (a failed run), never an abort with a stack trace; the trace is
    // there for a bug report with PIPELINE_TRACE=1.
    Console.Error.WriteLine($"error: {CliErrors.Describe(e, DataRoot(parsed))} ({e.GetType().Name}; PIPELINE_TRACE=1 shows where)");
    if (Environment.GetEnvironmentVariable("PIPELINE_TRACE") == "1") Console.Error.WriteLine(e);
    return 2;
}

// The command's --out (its data root), when it has one.
static string? DataRoot(ParseResult parsed) =>
    parsed.CommandResult.Command.Options.Any(o => o.Name == "--out") ? parsed.GetValue<string>("--out") : null;

static async Task<T> NamingTheFileAsync<T>(Func<Task<T>> read, string path)
{
    try
    {
        return await read();
    }
    catch (Exception e) when (e is not OperationCanceledException)
    {
        throw new InvalidDataException($"inspect: '{path}' is not a readable Parquet file ({e.Message})", e);
    }
}

static string Shorten(object? value)
{
    var text = value switch { byte[] b => $"<{b.Length} bytes>", null => "null", _ => value.ToString() ?? "" };
    text = text.Replace('\n', ' ');
    return text.Length > 80 ? text[..80] + "…" : text;
}

/// <summary>The options of `pipeline ablate`.</summary>
internal static class AblateOptions
{
    public static readonly Argument<string[]> Raw = new("raw") { Description = "Raw-page shards (Parquet files or folders, from `pipeline crawl`)", Arity = ArgumentArity.OneOrMore };
    public static readonly Option<string> Name = new("--name") { Description = "The ablation's name (its runs are <name>-<arm>-s<seed>)", Required = true };
    public static readonly Option<string[]> Arms = new("--arm") { Description = "An arm, repeatable: NAME or NAME:KEY=VALUE,... (recipe=none, Pipeline:Cleaner:Recipe=file.json, Pipeline:SemanticDedup:Enabled=true, ...)", Required = true };
    public static readonly Option<int> Steps = new("--steps") { Description = "Training steps of every model (the token budget: steps x batch x context)", DefaultValueFactory = _ => 200 };
    public static readonly Option<int> Seeds = new("--seeds") { Description = "Models per arm, seeds 1..N", DefaultValueFactory = _ => 1 };
    public static readonly Option<string?> Tokenizer = new("--tokenizer") { Description = "A tokenizer folder for every arm (default: one trained on the union of the arms' kept documents)" };
}
