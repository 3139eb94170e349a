using Pipeline.Contracts.Checkpoints;
using Pipeline.Model;
using Pipeline.Storage;

namespace Pipeline.Release;

/// <summary>
/// What a checkpoint is released as, written the same way in release rules, `pipeline run --release` and
/// <c>ReleaseRequested.Target</c>: "int8" or "int4" (a quantized checkpoint; "int4/64" sets the group size) or
/// "gguf:f32|f16|q8_0|q4_0" (a llama.cpp file).
/// </summary>
public sealed record ReleaseTarget
{
    /// <summary>The quantized checkpoint's settings; null for a GGUF file.</summary>
    public WeightQuantization? Quantization { get; private init; }

    /// <summary>The GGUF file's tensor type and its name; null for a quantized checkpoint.</summary>
    public (string Name, GgmlType Type)? Gguf { get; private init; }

    public required string Text { get; init; }

    public override string ToString() => Text;

    /// <summary>
    /// What releasing step <paramref name="step"/> of run <paramref name="run"/> as this target writes, as a URI under the
    /// data root: the quantized checkpoint's folder (checkpoints/&lt;run&gt;-int8/step-N) or the GGUF file
    /// (releases/&lt;run&gt;/&lt;run&gt;-step-N-&lt;type&gt;.gguf).
    /// </summary>
    public string Output(string run, long step) => Quantization is { } q
        ? $"{Checkpoints.RunFolder(CheckpointQuantizer.RunName(run, q))}/step-{step:D7}"
        : $"releases/{SafeName.Check(run, "run name")}/{run}-step-{step:D7}-{Gguf!.Value.Name}.gguf";

    /// <summary>Checks targets where they are configured: the first unknown one is an error that names <paramref name="source"/>, the target and what is accepted.</summary>
    public static void CheckAll(IEnumerable<string> targets, string source)
    {
        foreach (var target in targets)
        {
            try
            {
                Parse(target);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"{source}: {e.Message}", e);
            }
        }
    }

    /// <summary>Reads a target; an unknown one is an error naming it and what is accepted.</summary>
    public static ReleaseTarget Parse(string text)
    {
        var trimmed = text.Trim();
        if (trimmed.StartsWith("gguf:", StringComparison.Ordinal))
        {
            var type = trimmed["gguf:".Length..];
            return GgufExport.Types.TryGetValue(type, out var ggml)
                ? new ReleaseTarget { Text = trimmed, Gguf = (type, ggml) }
                : throw new ArgumentException($"release target '{text}': GGUF type '{type}' is not one of {string.Join(", ", GgufExport.Types.Keys)}");
        }
        var parts = trimmed.Split('/');
        if (parts.Length > 2 || parts[0] is not ("int8" or "int4"))
            throw new ArgumentException($"release target '{text}' is not int8, int4, int8/<group size>, int4/<group size> or gguf:<{string.Join("|", GgufExport.Types.Keys)}>");
        int? group = null;
        if (parts.Length == 2)
            group = int.TryParse(parts[1], out var g) && g >= 0 ? g : throw new ArgumentException($"release target '{text}': group size '{parts[1]}' is not a whole number");
        return new ReleaseTarget { Text = trimmed, Quantization = CheckpointQuantizer.Parse(parts[0], group, embeddings: true) };
    }
}
