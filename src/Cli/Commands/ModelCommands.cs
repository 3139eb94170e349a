using System.CommandLine;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Pipeline.Hosting;
using Pipeline.Runtime;
using Pipeline.Contracts.Rows;
using Pipeline.Model;
using Pipeline.Storage;
using Pipeline.Bpe;
using Pipeline.Release;
using Pipeline.Tokenizer;
using Pipeline.Trainer;
using Spectre.Console;
using static TorchSharp.torch;
using Pipeline.Contracts.Checkpoints;

namespace Pipeline.Cli.Commands;

/// <summary>What `pipeline train --config F` reads: the token manifest and the training configuration.</summary>
public sealed record TrainJobFile
{
    /// <summary>Folder the manifest's shard URIs are relative to (default: --out).</summary>
    public string? DataRoot { get; init; }
    /// <summary>Manifest URI under the data root (default: shards/tokens/&lt;run&gt;/manifest.json).</summary>
    public string? Manifest { get; init; }
    public TrainingConfig Training { get; init; } = new();
}

/// <summary>`pipeline train`, `pipeline sample` and `pipeline export`: the model outside the bus.</summary>
public static class ModelCommands
{
    public static Command Train(Option<string> outOption, Option<string> runOption)
    {
        var configOption = new Option<string>("--config") { Description = "JSON file: { \"DataRoot\", \"Manifest\", \"Training\": { model, schedule, budget } } (docs/trainer.md)", Required = true };
        var resetOptimizer = new Option<bool>("--reset-optimizer") { Description = "Resume from a checkpoint whose optimizer.bin is missing, with a fresh optimizer state" };
        var command = new Command("train", "Train a GPT on token shards (same job as a StartTraining message, no bus); checkpoints under --out/checkpoints/<name>; resumes") { configOption, resetOptimizer, outOption, runOption };
        command.SetAction((parse, ct) => TrainAsync(Runtime.StrictConfig.FromJsonFile<TrainJobFile>(parse.GetValue(configOption)!, "--config"),
            parse.GetValue(outOption)!, parse.GetValue(runOption)!, parse.GetValue(resetOptimizer), ct));
        return command;
    }

    public static Command Distill(Option<string> outOption, Option<string> runOption)
    {
        var teacher = new Option<string>("--teacher") { Description = "The teacher's checkpoint folder (…/checkpoints/<run>/step-NNNNNNN)", Required = true };
        var configOption = new Option<string>("--config") { Description = "The student's training file, as for `pipeline train` (its Training.Model is the student's shape)", Required = true };
        var temperature = new Option<double?>("--temperature") { Description = "Softening temperature T (default 1)" };
        var alpha = new Option<double?>("--alpha") { Description = "Weight of the data's cross-entropy; the teacher's divergence gets 1 - alpha (default 0.2)" };
        var divergence = new Option<string?>("--divergence") { Description = "forward: KL(teacher || student), Hinton's (default); reverse: KL(student || teacher), MiniLLM's" };
        divergence.AcceptOnlyFromAmong("forward", "reverse");
        var topK = new Option<int?>("--top-k") { Description = "Keep only the teacher's k most likely tokens per position (default: all)" };
        var command = new Command("distill", "Train a student on token shards against a teacher checkpoint (knowledge distillation); same job as a StartTraining message with Distillation set; resumes")
        {
            teacher, configOption, temperature, alpha, divergence, topK, outOption, runOption,
        };
        command.SetAction((parse, ct) =>
        {
            if (!Directory.Exists(parse.GetValue(teacher)!)) throw new ArgumentException($"--teacher: teacher checkpoint '{parse.GetValue(teacher)}' does not exist");
            var job = Runtime.StrictConfig.FromJsonFile<TrainJobFile>(parse.GetValue(configOption)!, "--config");
            var settings = job.Training.Distillation ?? new DistillationConfig();
            settings = settings with
            {
                Teacher = Path.GetFullPath(parse.GetValue(teacher)!),
                Temperature = parse.GetValue(temperature) ?? settings.Temperature,
                Alpha = parse.GetValue(alpha) ?? settings.Alpha,
                Divergence = parse.GetValue(divergence) ?? settings.Divergence,
                TopK = parse.GetValue(topK) ?? settings.TopK,
            };
            return TrainAsync(job with { Training = job.Training with { Distillation = settings } }, parse.GetValue(outOption)!, parse.GetValue(runOption)!, false, ct);
        });
        return command;
    }

    private static async Task<int> TrainAsync(TrainJobFile job, string outOption, string runName, bool resetOptimizer, CancellationToken ct)
    {
        SafeName.Check(job.Training.RunName, "--config Training.RunName");
        var outDir = CliInputs.OutDir(outOption);
        var dataRoot = Path.GetFullPath(job.DataRoot ?? outDir);
        var manifestUri = job.Manifest ?? RunArtifacts.TokenManifestUri(runName);
        var manifest = TokenManifestFile.Load(new ShardStore(dataRoot).Resolve(manifestUri));
        var config = (job.Training with { Model = job.Training.Model with { VocabSize = manifest.VocabSize }, ResetOptimizer = job.Training.ResetOptimizer || resetOptimizer }).Resolved();
        var data = await TokenData.LoadAsync(new ShardStore(dataRoot), manifestUri, manifest.TokenizerHash, config.Model.Context, ct);
        using var logging = PipelineContext.Logging(quiet: false);
        AnsiConsole.MarkupLine($"train: {config.Model.Parameters():N0} parameters, {config.Model.FlopsPerToken():E2} FLOPs per token, {data.Train.Length:N0} training tokens");
        // Through the store: a checkpoints/ folder that is a link leading out of --out is refused, never followed.
        var runFolder = new ShardStore(outDir).Resolve(Checkpoints.RunFolder(config.RunName));
        var run = new TrainingRun(config, data, runFolder, logging.CreateLogger("train"));
        var steps = await run.RunAsync(ct);
        AnsiConsole.MarkupLine($"[green]train[/]: stopped at step {steps}; checkpoints in {Markup.Escape(runFolder)}");
        // Interrupted by a signal: the checkpoint of the current step is written; the exit code still says "interrupted".
        return ct.IsCancellationRequested ? 130 : 0;
    }

    private static readonly Option<string> CheckpointOption = new("--checkpoint") { Description = "Checkpoint folder (…/checkpoints/<run>/step-NNNNNNN)", Required = true };
    private static readonly Option<string?> TokenizerOption = new("--tokenizer") { Description = "Tokenizer folder (default: found under the run's data root by the checkpoint's tokenizer hash)" };

    public static Command Sample()
    {
        var prompt = new Argument<string>("prompt") { Description = "Text to continue" };
        var temperature = new Option<double>("--temperature") { DefaultValueFactory = _ => 0.8 };
        var topK = new Option<int>("--top-k") { DefaultValueFactory = _ => 50 };
        var topP = new Option<double>("--top-p") { DefaultValueFactory = _ => 0.95 };
        var maxTokens = new Option<int>("--max-tokens") { DefaultValueFactory = _ => 100 };
        var seed = new Option<long>("--seed") { DefaultValueFactory = _ => 1 };
        var command = new Command("sample", "Generate text from a checkpoint (temperature, top-k, top-p; KV cache)") { CheckpointOption, TokenizerOption, prompt, temperature, topK, topP, maxTokens, seed };
        command.SetAction(parse =>
        {
            var (model, info, tokenizer) = Load(parse.GetValue(CheckpointOption)!, parse.GetValue(TokenizerOption));
            var ids = tokenizer.Encode(parse.GetValue(prompt)!).ToList();
            if (ids.Count == 0) ids.Add(tokenizer.EndOfText);
            var output = TextGenerator.Generate(model, ids, new SamplingOptions
            {
                Temperature = parse.GetValue(temperature),
                TopK = parse.GetValue(topK),
                TopP = parse.GetValue(topP),
                MaxNewTokens = parse.GetValue(maxTokens),
                Seed = parse.GetValue(seed),
            }, new HashSet<int> { tokenizer.EndOfText });
            Console.WriteLine(parse.GetValue(prompt) + tokenizer.Decode(output.Where(t => t != tokenizer.EndOfText)));
            Console.Error.WriteLine($"({info.RunName} step {info.Step}, {output.Count} tokens)");
            return 0;
        });
        return command;
    }

    public static Command Export(Option<string> outOption)
    {
        var checkpoint = new Option<string?>("--checkpoint") { Description = "Checkpoint folder (…/checkpoints/<run>/step-NNNNNNN) to export" };
        var adapter = new Option<string?>("--adapter") { Description = "LoRA adapter folder (…/checkpoints/<run>/adapter-step-NNNNNNN) to export in PEFT's layout" };
        var format = new Option<string>("--format") { Description = "hf (Hugging Face Llama folder, the default), gguf (one file for llama.cpp: --out FILE.gguf) or safetensors (this project's tensor names)", DefaultValueFactory = _ => "hf" };
        format.AcceptOnlyFromAmong("hf", "gguf", "safetensors");
        var type = new Option<string>("--type") { Description = "With --format gguf: the matrices' type, f32, f16, q8_0 or q4_0 (norms stay f32)", DefaultValueFactory = _ => "f16" };
        type.AcceptOnlyFromAmong([.. GgufExport.Types.Keys]);
        var baseName = new Option<string?>("--base-name") { Description = "With --adapter: base_model_name_or_path, a hub id or a local path, which PEFT resolves against the directory Python runs in, not the adapter folder (default: the 'base' folder beside --out, named from this directory)" };
        var command = new Command("export", "Write a checkpoint as a Hugging Face Llama model folder (or a LoRA adapter as a PEFT adapter) to --out")
        {
            checkpoint, adapter, format, type, baseName, TokenizerOption, outOption,
        };
        command.SetAction(parse =>
        {
            if (parse.GetValue(format) == "gguf") return ExportGguf(parse.GetValue(checkpoint), parse.GetValue(TokenizerOption), GgufExport.Types[parse.GetValue(type)!], parse.GetValue(outOption)!);
            var outDir = CliInputs.OutDir(parse.GetValue(outOption)!);
            if (parse.GetValue(adapter) is { } adapterFolder)
            {
                Interop.PeftExport.Write(adapterFolder, outDir, parse.GetValue(baseName)
                    ?? Path.GetRelativePath(Environment.CurrentDirectory, Path.Combine(Path.GetDirectoryName(Path.GetFullPath(outDir))!, "base")).Replace('\\', '/'));
                AnsiConsole.MarkupLine($"[green]export[/]: PEFT adapter in {Markup.Escape(outDir)}");
                return 0;
            }
            var folder = parse.GetValue(checkpoint) ?? throw new ArgumentException("give --checkpoint (a model) or --adapter (a LoRA adapter)");
            var (model, info, tokenizer) = Load(folder, parse.GetValue(TokenizerOption));
            if (parse.GetValue(format) == "hf")
            {
                Interop.HuggingFaceExport.Write(model, info, tokenizer, outDir);
                AnsiConsole.MarkupLine($"[green]export[/]: Hugging Face Llama model in {Markup.Escape(outDir)}");
                return 0;
            }
            Safetensors.Save(model, Path.Combine(outDir, "model.safetensors"), new Dictionary<string, string>
            {
                ["format"] = "pt", ["run"] = info.RunName, ["step"] = info.Step.ToString(), ["tokenizer_hash"] = info.TokenizerHash,
            });
            File.WriteAllText(Path.Combine(outDir, "config.json"), JsonSerializer.Serialize(new { model = info.Config.Model, tokenizer_hash = info.TokenizerHash, step = info.Step },
                new JsonSerializerOptions { WriteIndented = true }));
            tokenizer.CopyFilesTo(outDir);
            AnsiConsole.MarkupLine($"[green]export[/]: {Markup.Escape(Path.Combine(outDir, "model.safetensors"))}");
            return 0;
        });
        return command;
    }

    private static int ExportGguf(string? folder, string? tokenizerFolder, GgmlType type, string outFile)
    {
        if (folder is null) throw new ArgumentException("--format gguf: give --checkpoint (a model)");
        var path = Path.GetFullPath(outFile);
        if (Directory.Exists(path)) throw new ArgumentException($"--out '{outFile}' is a folder: --format gguf writes one file (e.g. --out model.gguf)");
        var (model, info, tokenizer) = Load(folder, tokenizerFolder);
        // Whole or not at all (AtomicWrite creates the folder): llama.cpp must never find half a file under the name.
        AtomicWrite.File(path, stream => GgufExport.Write(model, info, tokenizer, stream, type));
        AnsiConsole.MarkupLine($"[green]export[/]: {Markup.Escape(path)} (GGUF, {type}, {new FileInfo(path).Length / 1024.0 / 1024.0:F1} MiB)");
        return 0;
    }

    public static Command Quantize(Option<string> outOption)
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "Checkpoint folder (…/checkpoints/<run>/step-NNNNNNN) to quantize", Required = true };
        var type = new Option<string>("--type") { Description = "int8 or int4 (weight-only, symmetric)", Required = true };
        type.AcceptOnlyFromAmong("int8", "int4");
        var group = new Option<int?>("--group-size") { Description = "Weights per scale within an output channel: 0 for one scale per channel (default for int8), 32 (default for int4), 64, ..." };
        var keepEmbeddings = new Option<bool>("--keep-embeddings") { Description = "Leave the token embedding (also the output layer) in full precision" };
        var name = new Option<string?>("--name") { Description = "Run name of the quantized checkpoint (default: <run>-int8 or <run>-int4, with -g<N> for other group sizes and -fp-embedding with --keep-embeddings)" };
        var command = new Command("quantize", "Write a checkpoint with int8 or int4 weights (sample, eval and the evaluator take it) under --out/checkpoints/<name>")
        {
            checkpoint, type, group, keepEmbeddings, name, TokenizerOption, outOption,
        };
        command.SetAction(parse =>
        {
            var outDir = CliInputs.OutDir(parse.GetValue(outOption)!);
            var source = parse.GetValue(checkpoint)!;
            var (model, info, tokenizer) = Load(source, parse.GetValue(TokenizerOption));
            var quantization = CheckpointQuantizer.Parse(parse.GetValue(type)!, parse.GetValue(group), !parse.GetValue(keepEmbeddings));
            var result = CheckpointQuantizer.Quantize(model, info, Path.GetFullPath(source), quantization, outDir, parse.GetValue(name));
            var (folder, runName) = (result.Folder, result.Info.RunName);
            // The tokenizer beside it, where sample, eval and the evaluator look (<root>/tokenizers).
            var tokenizers = Path.Combine(outDir, "tokenizers");
            if (TextTokenizer.FindFolder(tokenizers, tokenizer.Hash) is null)
                AtomicWrite.Folder(Path.Combine(tokenizers, $"{runName}-{tokenizer.Hash}"), tokenizer.CopyFilesTo);
            AnsiConsole.MarkupLine($"[green]quantize[/]: {Markup.Escape(folder)} ({quantization.Name}, " +
                                   $"{(quantization.GroupSize == 0 ? "a scale per output channel" : $"groups of {quantization.GroupSize}")}" +
                                   $"{(quantization.Embeddings ? "" : ", embedding in full precision")}; weights {result.BytesBefore / 1048576.0:F2} MiB -> {result.BytesAfter / 1048576.0:F2} MiB)");
            return 0;
        });
        return command;
    }

    public static Command Import(Option<string> outOption)
    {
        var folder = new Argument<string>("folder") { Description = "A Hugging Face Llama model folder (config.json, model.safetensors, tokenizer files)" };
        var format = new Option<string>("--format") { Description = "hf (the only format)", DefaultValueFactory = _ => "hf" };
        format.AcceptOnlyFromAmong("hf");
        var name = new Option<string>("--name") { Description = "Run name of the imported model (checkpoints/<name>, tokenizers/<name>)", Required = true };
        var command = new Command("import", "Read a Llama-architecture Hugging Face model into a checkpoint that train, align and eval accept") { folder, format, name, outOption };
        command.SetAction(parse =>
        {
            var runName = SafeName.Check(parse.GetValue(name), "--name");
            var outDir = CliInputs.OutDir(parse.GetValue(outOption)!);
            var imported = Interop.HuggingFaceImport.Import(parse.GetValue(folder)!, outDir, runName);
            AnsiConsole.MarkupLine($"[green]import[/]: checkpoint {Markup.Escape(imported.Checkpoint)}, tokenizer {imported.TokenizerHash} in {Markup.Escape(imported.TokenizerFolder)}");
            return 0;
        });
        return command;
    }

    /// <summary>Loads a checkpoint and its tokenizer; refuses a tokenizer whose hash is not the checkpoint's.</summary>
    public static (Gpt Model, CheckpointInfo Info, TextTokenizer Tokenizer) Load(string checkpoint, string? tokenizerFolder)
    {
        if (!Directory.Exists(checkpoint)) throw new ArgumentException($"checkpoint '{checkpoint}' does not exist");
        var (model, info) = Checkpoints.Load(checkpoint, CPU);
        // Checkpoints live at <root>/checkpoints/<run>/step-N; tokenizers at <root>/tokenizers/<run>.
        tokenizerFolder ??= TextTokenizer.FindFolder(Path.GetFullPath(Path.Combine(checkpoint, "..", "..", "..", "tokenizers")), info.TokenizerHash)
            ?? throw new ArgumentException($"no tokenizer with hash {info.TokenizerHash} found near '{checkpoint}'; pass --tokenizer");
        var tokenizer = TextTokenizer.Load(tokenizerFolder);
        if (tokenizer.Hash != info.TokenizerHash)
            throw new ArgumentException($"tokenizer '{tokenizerFolder}' has hash {tokenizer.Hash}, but checkpoint '{checkpoint}' was trained with {info.TokenizerHash}");
        return (model, info, tokenizer);
    }
}
