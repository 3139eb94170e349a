using System.Text.RegularExpressions;

namespace Pipeline.Model.Tests;

/// <summary>
/// The device-mismatch detector for the GPU path, which this machine cannot run: every tensor that generation,
/// scoring, alignment and training create at run time must be created on the model's device (a <c>device:</c>
/// argument) or moved there in the same statement (<c>.to(device)</c>, <c>ToDevice</c>), or read back on purpose
/// (<c>.cpu()</c>). A tensor factory call in these code paths that does none of these is a tensor left on the CPU,
/// which the first CUDA run would reject. (A model moved to PyTorch's "meta" device was tried as a runtime detector:
/// this libtorch has no meta kernel for the embedding lookup, so every path fails at its first op either way.)
/// </summary>
public sealed partial class DevicePlacementTests
{
    /// <summary>The code paths a GPU run takes at run time (module construction is moved with the module).</summary>
    private static readonly string[] Paths =
    [
        "src/Model/TextGenerator.cs", "src/Model/CausalSelfAttention.cs",
        "src/Evaluator/Tasks/TaskRunner.cs",
        "src/Alignment/AlignmentTrainer.cs", "src/Alignment/SequenceScoring.cs", "src/Alignment/Dpo.cs",
        "src/Model/TokenData.cs", "src/Trainer/TrainingRun.cs", "src/Trainer/Bf16Compute.cs",
    ];

    [GeneratedRegex(@"(?<![\w.])(tensor|zeros|ones|arange|full|empty|randn|rand|randint|eye|linspace)\(")]
    private static partial Regex Factory();

    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Pipeline.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("Pipeline.sln not found above the test binaries");
    }

    /// <summary>The statements of a C# file that call a tensor factory, with their line numbers (comments skipped).</summary>
    internal static IEnumerable<(int Line, string Statement)> FactoryStatements(string source)
    {
        var lines = source.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var code = lines[i].Split("//")[0];
            if (code.TrimStart().StartsWith("///") || !Factory().IsMatch(code)) continue;
            // The statement runs until its semicolon (a few lines at most here).
            var statement = code;
            for (var j = i + 1; !statement.Contains(';') && j < lines.Length; j++) statement += lines[j].Split("//")[0];
            yield return (i + 1, statement);
        }
    }

    internal static bool Placed(string statement) =>
        statement.Contains("device:") || statement.Contains(".to(device") || statement.Contains("ToDevice(") || statement.Contains(".cpu()");

    [Fact]
    public void Every_tensor_of_the_gpu_code_paths_is_created_on_the_models_device()
    {
        var root = Root();
        var offenders = new List<string>();
        var checkedCalls = 0;
        foreach (var path in Paths)
        {
            foreach (var (line, statement) in FactoryStatements(File.ReadAllText(Path.Combine(root, path))))
            {
                checkedCalls++;
                if (!Placed(statement)) offenders.Add($"{path}:{line}: {statement.Trim()}");
            }
        }
        Assert.True(checkedCalls > 10, $"only {checkedCalls} factory calls found: the scan is not reading the code");
        Assert.True(offenders.Count == 0, "tensors created off the model's device:\n" + string.Join('\n', offenders));
    }

    [Fact]
    public void The_detector_flags_a_tensor_left_on_the_cpu()
    {
        // What TaskRunner.LogLikelihood did before: the input on the CPU, the model anywhere.
        var before = "var input = tensor(all.Select(i => (long)i).ToArray(), [1, all.Count - 1]);\nvar logProbs = model.forward(input);";
        var after = "var input = tensor(ids, [1, n], device: Device);";
        Assert.False(Placed(Assert.Single(FactoryStatements(before)).Statement));
        Assert.True(Placed(Assert.Single(FactoryStatements(after)).Statement));
    }
}
