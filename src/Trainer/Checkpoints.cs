using System.Text.Json;
using Pipeline.Model;
using TorchSharp.Modules;

namespace Pipeline.Trainer;

/// <summary>What a checkpoint folder's checkpoint.json holds besides the weights.</summary>
public sealed record CheckpointInfo(string RunName, long Step, long TokensSeen, string TokenizerHash, double? ValidationLoss, TrainingConfig Config, string? BaseCheckpoint = null, string? Method = null);

/// <summary>
/// Checkpoints are folders (model.bin, optimizer.bin, checkpoint.json) written under a temporary name and renamed when
/// complete, so a kill during writing leaves the previous checkpoint intact. Keeps the last N.
/// </summary>
public static class Checkpoints
{
    public static string Save(string runFolder, Gpt model, AdamW? optimizer, CheckpointInfo info, int keepLast, bool keepBest = false)
    {
        Directory.CreateDirectory(runFolder);
        var final = Path.Combine(runFolder, $"step-{info.Step:D7}");
        var temp = final + $".tmp-{Environment.ProcessId}";
        if (Directory.Exists(temp)) Directory.Delete(temp, true);
        Directory.CreateDirectory(temp);
        model.save(Path.Combine(temp, "model.bin"));
        optimizer?.save_state_dict(Path.Combine(temp, "optimizer.bin"));
        File.WriteAllText(Path.Combine(temp, "checkpoint.json"), JsonSerializer.Serialize(info, new JsonSerializerOptions { WriteIndented = true }));
        if (Directory.Exists(final)) Directory.Delete(final, true);
        Directory.Move(temp, final);
        var best = keepBest ? Best(runFolder) : null;
        foreach (var old in List(runFolder).SkipLast(Math.Max(1, keepLast)))
            if (old != best) Directory.Delete(old, true);
        return final;
    }

    /// <summary>The checkpoint with the lowest validation loss, or null when none has one.</summary>
    public static string? Best(string runFolder) =>
        List(runFolder).Select(f => (Folder: f, Loss: ReadInfo(f).ValidationLoss)).Where(x => x.Loss is not null)
            .OrderBy(x => x.Loss).Select(x => x.Folder).FirstOrDefault();

    /// <summary>Complete checkpoints of a run, oldest first.</summary>
    public static IReadOnlyList<string> List(string runFolder) =>
        Directory.Exists(runFolder)
            ? Directory.GetDirectories(runFolder, "step-*").Where(d => !d.Contains(".tmp") && File.Exists(Path.Combine(d, "checkpoint.json"))).Order(StringComparer.Ordinal).ToList()
            : [];

    public static CheckpointInfo ReadInfo(string folder)
    {
        var path = Path.Combine(folder, "checkpoint.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint '{folder}' has no checkpoint.json", path);
        return JsonSerializer.Deserialize<CheckpointInfo>(File.ReadAllText(path)) ?? throw new InvalidDataException($"'{path}' is empty");
    }

    /// <summary>Loads a checkpoint's model (and optimizer state when given); throws naming the folder if it is corrupt.</summary>
    public static (Gpt Model, CheckpointInfo Info) Load(string folder, TorchSharp.torch.Device device, AdamW? optimizer = null, Gpt? into = null)
    {
        var info = ReadInfo(folder);
        var model = into ?? new Gpt(info.Config.Model, device);
        try
        {
            model.load(Path.Combine(folder, "model.bin"));
            if (optimizer is not null && File.Exists(Path.Combine(folder, "optimizer.bin")))
                optimizer.load_state_dict(Path.Combine(folder, "optimizer.bin"));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"checkpoint '{folder}' is corrupt: {e.Message}", e);
        }
        return (model, info);
    }
}
