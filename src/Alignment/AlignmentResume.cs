using System.Text.Json;
using Pipeline.Contracts.Checkpoints;
using Pipeline.Model;
using TorchSharp.Modules;

namespace Pipeline.Alignment;

/// <summary>
/// The state of an alignment job every <see cref="Every"/> steps and when it is stopped, kept the way pretraining
/// keeps its own: a checkpoint (weights with the LoRA adapters, AdamW's moments, the step; <see cref="Checkpoints"/>)
/// in <c>resume/</c> of the job's output folder, the last one only. A job started again with the same base, data and
/// config continues from it and ends with the same weights and losses as a job never stopped: the batches are drawn
/// from a generator seeded once and replayed to the step, the learning rate is a function of the step, and the model
/// has no dropout (with LoRA dropout above 0 the masks after a resume differ).
/// </summary>
/// <param name="fingerprint">Base checkpoint, data hash and config: a state saved under another is ignored.</param>
public sealed class AlignmentResume(string outputFolder, string fingerprint, int every)
{
    // Beside the checkpoint's own files: which job saved it.
    private const string JobFile = "resume.json";

    private string Folder => Path.Combine(outputFolder, "resume");

    public int Every => every;

    /// <param name="State">The objective's own state at that step (PPO's adaptive KL coefficient), when it has one.</param>
    private sealed record Job(string Fingerprint, IReadOnlyDictionary<string, double>? State = null);

    /// <summary>The objective's state saved with the step <see cref="Restore"/> returned (null: none).</summary>
    public IReadOnlyDictionary<string, double>? RestoredState { get; private set; }

    /// <summary>Loads the saved state into the model and optimizer; returns the step it reached (0: none saved).</summary>
    public int Restore(Gpt model, AdamW optimizer)
    {
        Checkpoints.RemovePartial(Folder);
        if (Checkpoints.List(Folder).LastOrDefault() is not { } last) return 0;
        var jobPath = Path.Combine(last, JobFile);
        var job = File.Exists(jobPath) ? JsonSerializer.Deserialize<Job>(File.ReadAllText(jobPath)) : null;
        if (job?.Fingerprint != fingerprint) return 0;
        try
        {
            RestoredState = job.State;
            return (int)Checkpoints.Load(last, model.parameters().First().device, optimizer, into: model).Info.Step;
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"the alignment resume state in '{Folder}' is corrupt ({e.Message}); delete the folder to start from the base", e);
        }
    }

    /// <summary>Writes the state of <paramref name="step"/> as a checkpoint, replacing the last one.</summary>
    public void Save(int step, Gpt model, AdamW optimizer, IReadOnlyDictionary<string, double>? state = null)
    {
        var info = new CheckpointInfo("resume", step, 0, "", null, new TrainingConfig { Model = model.Config });
        Checkpoints.Save(Folder, model, optimizer, info, keepLast: 1,
            writeMore: temp => File.WriteAllText(Path.Combine(temp, JobFile), JsonSerializer.Serialize(new Job(fingerprint, state))));
    }

    /// <summary>Removes the state once the job has written its result.</summary>
    public void Clear()
    {
        if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
    }
}

/// <summary>An objective with state of its own beyond the weights and optimizer (PPO's adaptive KL coefficient), saved and restored with the job's.</summary>
public interface IResumableObjective
{
    IReadOnlyDictionary<string, double> State { get; }

    void Restore(IReadOnlyDictionary<string, double> state);
}
