using System.Text.Json;
using Pipeline.Model;
using Pipeline.Storage;
using TorchSharp.Modules;

namespace Pipeline.Alignment;

/// <summary>
/// The state of an alignment job every <see cref="Every"/> steps and when it is stopped: the weights (with the LoRA
/// adapters), AdamW's moments and the step, in <c>resume/</c> of the job's output folder. A job started again with the
/// same base, data and config continues from it and ends with the same weights and losses as a job never stopped:
/// the batches are drawn from a generator seeded once and replayed to the step, the learning rate is a function of
/// the step, and the model has no dropout (with LoRA dropout above 0 the masks after a resume differ).
/// </summary>
/// <param name="fingerprint">Base checkpoint, data hash and config: a state saved under another is ignored.</param>
public sealed class AlignmentResume(string outputFolder, string fingerprint, int every)
{
    private string Folder => Path.Combine(outputFolder, "resume");

    public int Every => every;

    private sealed record State(string Fingerprint, int Step);

    /// <summary>Loads the saved state into the model and optimizer; returns the step it reached (0: none saved).</summary>
    public int Restore(Gpt model, AdamW optimizer)
    {
        var statePath = Path.Combine(Folder, "state.json");
        if (!File.Exists(statePath)) return 0;
        var state = JsonSerializer.Deserialize<State>(File.ReadAllText(statePath));
        if (state is null || state.Fingerprint != fingerprint) return 0;
        try
        {
            model.load(Path.Combine(Folder, "model.bin"), strict: true);
            optimizer.load_state_dict(Path.Combine(Folder, "optimizer.bin"));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"the alignment resume state in '{Folder}' is corrupt ({e.Message}); delete the folder to start from the base", e);
        }
        return state.Step;
    }

    /// <summary>Writes the state of <paramref name="step"/>, replacing the last one whole.</summary>
    public void Save(int step, Gpt model, AdamW optimizer)
    {
        AtomicWrite.Folder(Folder, temp =>
        {
            model.save(Path.Combine(temp, "model.bin"));
            optimizer.save_state_dict(Path.Combine(temp, "optimizer.bin"));
            File.WriteAllText(Path.Combine(temp, "state.json"), JsonSerializer.Serialize(new State(fingerprint, step)));
        });
    }

    /// <summary>Removes the state once the job has written its result.</summary>
    public void Clear()
    {
        if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
    }
}
