using Pipeline.Contracts.Checkpoints;
using Pipeline.Model;
using static TorchSharp.torch;

namespace Pipeline.Release;

/// <summary>
/// Writes a checkpoint's quantized copy as a checkpoint of its own (run &lt;run&gt;-int8 or -int4, same step), which
/// sample, eval and the evaluator load like any other; `pipeline quantize` and the trainer service's release job
/// both call it. The copy names its source (BaseCheckpoint, Method "quantize"), so its scores are a run of their own.
/// </summary>
public static class CheckpointQuantizer
{
    public const string Method = "quantize";

    /// <summary>Loads the full-precision checkpoint folder <paramref name="checkpoint"/> and writes its quantized copy.</summary>
    public static Result Quantize(string checkpoint, string baseCheckpoint, WeightQuantization quantization, string checkpointsRoot, string? runName = null)
    {
        var (model, info) = Checkpoints.Load(checkpoint, CPU);
        using (model) return Quantize(model, info, baseCheckpoint, quantization, checkpointsRoot, runName);
    }

    /// <param name="model">The loaded checkpoint; quantized in place.</param>
    /// <param name="info">Its checkpoint.json.</param>
    /// <param name="baseCheckpoint">The source folder's full path, which the copy names as its base (its announcement makes it a URI).</param>
    /// <param name="quantization">Bits, group size, embeddings.</param>
    /// <param name="checkpointsRoot">The folder runs' checkpoint folders are under (the data root).</param>
    /// <param name="runName">The copy's run name (null: <see cref="RunName"/>).</param>
    public static Result Quantize(Gpt model, CheckpointInfo info, string baseCheckpoint, WeightQuantization quantization, string checkpointsRoot, string? runName = null)
    {
        if (info.Quantization is { } already)
            throw new ArgumentException($"checkpoint '{baseCheckpoint}' is already quantized ({already.Name})");
        var before = model.WeightBytes();
        model.Quantize(quantization);
        runName ??= RunName(info.RunName, quantization);
        var quantized = info with
        {
            RunName = runName, Config = info.Config with { RunName = runName }, BaseCheckpoint = baseCheckpoint, Method = Method, Quantization = quantization,
        };
        var folder = Checkpoints.Save(Path.Combine(checkpointsRoot, Checkpoints.RunFolder(runName)), model, null, quantized, keepLast: int.MaxValue);
        return new Result(folder, quantized, before, model.WeightBytes());
    }

    /// <summary>
    /// The quantized copy's run name by default: &lt;run&gt;-int8 or &lt;run&gt;-int4 with the default groups, and what
    /// differs from them named after it (-g64, -fp-embedding), so that two settings never share a folder.
    /// </summary>
    public static string RunName(string run, WeightQuantization quantization) =>
        $"{run}-{quantization.Name}" + (quantization.GroupSize == DefaultGroupSize(quantization.Bits) ? "" : $"-g{quantization.GroupSize}") +
        (quantization.Embeddings ? "" : "-fp-embedding");

    private static int DefaultGroupSize(int bits) => bits == 8 ? 0 : 32;

    /// <summary>The quantized checkpoint's folder and info, and the weights' bytes in memory before and after.</summary>
    public sealed record Result(string Folder, CheckpointInfo Info, long BytesBefore, long BytesAfter);

    /// <summary>The quantization `--type int8|int4` and `--group-size` name (int8: a scale per channel; int4: groups of 32).</summary>
    public static WeightQuantization Parse(string type, int? groupSize, bool embeddings)
    {
        var bits = type switch
        {
            "int8" => 8,
            "int4" => 4,
            _ => throw new ArgumentException($"quantization type '{type}' is not int8 or int4"),
        };
        return new WeightQuantization(bits, groupSize ?? DefaultGroupSize(bits), embeddings);
    }
}
