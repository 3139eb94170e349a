using System.Text.Json;
using Pipeline.Contracts.Checkpoints;
using Pipeline.Contracts.V1;
using Pipeline.Storage;
using TorchSharp.Modules;

namespace Pipeline.Model;

/// <summary>
/// Checkpoints are folders (model.bin, optimizer.bin, checkpoint.json) written under a temporary name and renamed when
/// complete, so a kill during writing leaves the previous checkpoint intact. Keeps the last N.
/// </summary>
public static class Checkpoints
{
    /// <summary>The folder (URI under the data root) of a run's checkpoints.</summary>
    public static string RunFolder(string runName) => $"checkpoints/{SafeName.Check(runName, "run name")}";

    /// <summary>The file an aligned checkpoint's lineage goes in (base checkpoint, method, data hash, config).</summary>
    public const string LineageFile = "lineage.json";

    /// <summary>
    /// The `CheckpointSaved` announcement of a saved checkpoint folder: its info, the SHA-256 of its weights and, for
    /// an aligned checkpoint, its lineage. One builder for the trainer, the alignment jobs and re-announcements.
    /// </summary>
    public static async Task<CheckpointSaved> SavedMessageAsync(ShardStore store, string runId, string folder, CancellationToken ct = default)
    {
        var info = ReadInfo(folder);
        var (sha, _) = await ShardStore.HashFileAsync(Path.Combine(folder, "model.bin"), ct);
        var lineage = Path.Combine(folder, LineageFile);
        using var written = File.Exists(lineage) ? JsonDocument.Parse(File.ReadAllText(lineage)) : null;
        var dataHash = written?.RootElement.GetProperty("dataHash").GetString();
        // RL's reward model, when the policy had one: the lineage names it (base → SFT → reward model → policy).
        var rewardModel = written is not null && written.RootElement.TryGetProperty("config", out var config) && config.TryGetProperty("RewardModel", out var reward)
            && reward.GetString() is { } path ? (Path.IsPathRooted(path) ? store.RelativeUri(path) : path) : null;
        return new CheckpointSaved(runId, info.RunName, info.Step, info.TokensSeen, store.RelativeUri(folder), sha, info.TokenizerHash, info.ValidationLoss,
            info.BaseCheckpoint is null ? null : store.RelativeUri(info.BaseCheckpoint), info.Method, dataHash, rewardModel);
    }

    /// <param name="writeMore">Writes further files into the checkpoint before it appears (an aligned model's lineage).</param>
    public static string Save(string runFolder, Gpt model, AdamW? optimizer, CheckpointInfo info, int keepLast, bool keepBest = false, Action<string>? writeMore = null)
    {
        var final = Folder(runFolder, info.Step);
        AtomicWrite.Folder(final, temp =>
        {
            model.save(Path.Combine(temp, "model.bin"));
            optimizer?.save_state_dict(Path.Combine(temp, "optimizer.bin"));
            File.WriteAllText(Path.Combine(temp, "checkpoint.json"), JsonSerializer.Serialize(info with { HasOptimizerState = optimizer is not null }, new JsonSerializerOptions { WriteIndented = true }));
            writeMore?.Invoke(temp);
        });
        var best = keepBest ? Best(runFolder) : null;
        foreach (var old in List(runFolder).SkipLast(Math.Max(1, keepLast)))
            if (old != best) Directory.Delete(old, true);
        return final;
    }

    /// <summary>The URIs of a run folder's checkpoints, on this host or in the object store, oldest first.</summary>
    public static async Task<IReadOnlyList<string>> ListAsync(ShardStore store, string runFolderUri, CancellationToken ct = default) =>
        (await store.ListFoldersAsync(runFolderUri, ct)).Where(uri => uri[(uri.LastIndexOf('/') + 1)..].StartsWith("step-", StringComparison.Ordinal)).ToList();

    /// <summary>
    /// Puts a saved checkpoint in the object store (before it is announced) and removes from it the checkpoints this
    /// host no longer keeps (see <see cref="Save"/>), so every host sees the same set.
    /// </summary>
    public static async Task PublishAsync(ShardStore store, string folder, CancellationToken ct = default)
    {
        await store.PublishFolderAsync(store.RelativeUri(folder), ct);
        var runFolder = Path.GetDirectoryName(folder)!;
        var kept = List(runFolder).Select(store.RelativeUri).ToHashSet();
        foreach (var uri in await ListAsync(store, store.RelativeUri(runFolder), ct))
            if (!kept.Contains(uri)) await store.UnpublishFolderAsync(uri, ct);
    }

    /// <summary>Brings every checkpoint of a run folder that another host saved onto this one (a resumed run continues from the last).</summary>
    public static async Task FetchAllAsync(ShardStore store, string runFolderUri, CancellationToken ct = default)
    {
        foreach (var uri in await ListAsync(store, runFolderUri, ct)) await store.FetchFolderAsync(uri, ct);
    }

    /// <summary>Where the checkpoint of <paramref name="step"/> goes in a run folder.</summary>
    public static string Folder(string runFolder, long step) => Path.Combine(runFolder, $"step-{step:D7}");

    /// <summary>The checkpoint with the lowest validation loss, or null when none has one.</summary>
    public static string? Best(string runFolder) =>
        List(runFolder).Select(f => (Folder: f, Loss: ReadInfo(f).ValidationLoss)).Where(x => x.Loss is not null)
            .OrderBy(x => x.Loss).Select(x => x.Folder).FirstOrDefault();

    /// <summary>
    /// Removes the half-written checkpoint folders (temporary names, <see cref="AtomicWrite"/>) a killed or failed save
    /// left behind (a full disk, say); a run that starts or resumes calls it, so nothing half-written stays.
    /// </summary>
    public static void RemovePartial(string runFolder)
    {
        AtomicWrite.RemoveLeftovers(runFolder);
        // The temporary names of saves before AtomicWrite (step-N.tmp-PID), left by an older version.
        if (Directory.Exists(runFolder))
            foreach (var partial in Directory.GetDirectories(runFolder, "step-*.tmp-*")) Directory.Delete(partial, recursive: true);
    }

    /// <summary>Complete checkpoints of a run, oldest first.</summary>
    public static IReadOnlyList<string> List(string runFolder) =>
        Directory.Exists(runFolder)
            ? Directory.GetDirectories(runFolder, "step-*").Where(d => !d.Contains(".tmp") && File.Exists(Path.Combine(d, "checkpoint.json"))).Order(StringComparer.Ordinal).ToList()
            : [];

    public static CheckpointInfo ReadInfo(string folder)
    {
        var path = Path.Combine(folder, "checkpoint.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint '{folder}' has no checkpoint.json", path);
        try
        {
            return JsonSerializer.Deserialize<CheckpointInfo>(File.ReadAllText(path)) ?? throw new InvalidDataException($"checkpoint '{folder}': checkpoint.json holds null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"checkpoint '{folder}': checkpoint.json is not readable ({e.Message})", e);
        }
    }

    /// <summary>Loads a checkpoint's model (and optimizer state when given); throws naming the folder if it is corrupt.</summary>
    /// <param name="resetOptimizer">Start the optimizer fresh even when the checkpoint had a state that is now missing.</param>
    public static (Gpt Model, CheckpointInfo Info) Load(string folder, TorchSharp.torch.Device device, AdamW? optimizer = null, Gpt? into = null, bool resetOptimizer = false)
    {
        var info = ReadInfo(folder);
        var optimizerFile = Path.Combine(folder, "optimizer.bin");
        // A missing optimizer state that the checkpoint was saved with is damage, not a choice: resuming without it
        // silently restarts Adam's moments. Checkpoints that never had one (imported, aligned) start fresh.
        if (optimizer is not null && !resetOptimizer && info.HasOptimizerState && !File.Exists(optimizerFile))
            throw new InvalidDataException($"checkpoint '{folder}' was saved with an optimizer state, but optimizer.bin is missing; " +
                "to continue from its weights with a fresh optimizer, pass --reset-optimizer (ResetOptimizer in the training config)");
        if (info.Quantization is { } quantized && (optimizer is not null || into is not null))
            throw new InvalidDataException($"checkpoint '{folder}' is quantized ({quantized.Name}): training needs full-precision weights; " +
                                           $"train from the checkpoint it was made from ({info.BaseCheckpoint ?? "its BaseCheckpoint"})");
        var model = into ?? new Gpt(info.Config.Model, device);
        try
        {
            if (info.Quantization is not null) model.Quantize(info.Quantization);
            model.load(Path.Combine(folder, "model.bin"));
            if (optimizer is not null && !resetOptimizer && File.Exists(optimizerFile))
                optimizer.load_state_dict(optimizerFile);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"checkpoint '{folder}' is corrupt: {e.Message}", e);
        }
        return (model, info);
    }
}
