using System.CommandLine;
using Pipeline.Contracts.V1;
using Pipeline.Storage;

namespace Pipeline.Cli.Commands;

/// <summary>A shard given on the command line: the folder it lives in (as a store) and a claim check for it.</summary>
public sealed record InputShard(ShardStore Store, ShardRef Ref);

/// <summary>Turns command-line paths (Parquet files or folders of them) into shard references.</summary>
public static class CliInputs
{
    /// <summary>
    /// Files in folders are taken recursively in name order; the inspection tables stages write beside their shards
    /// (rejected-*, duplicates-*) are left out. The shard id is the file's SHA-256 prefix, so giving the same file
    /// twice, or rerunning a command, never processes it twice.
    /// </summary>
    public static async Task<List<InputShard>> ResolveAsync(IEnumerable<string> paths, string runId, string stage, CancellationToken ct)
    {
        var files = new List<string>();
        foreach (var path in paths)
        {
            if (Directory.Exists(path))
                files.AddRange(Directory.GetFiles(path, "*.parquet", SearchOption.AllDirectories)
                    .Where(f => !Path.GetFileName(f).StartsWith("rejected-") && !Path.GetFileName(f).StartsWith("duplicates-"))
                    .Order(StringComparer.Ordinal));
            else if (File.Exists(path)) files.Add(path);
            else throw new ArgumentException($"input '{path}' is neither a file nor a folder");
        }
        if (files.Count == 0) throw new ArgumentException($"no Parquet shards found in {string.Join(", ", paths)}");
        var result = new List<InputShard>();
        foreach (var file in files.Select(Path.GetFullPath).Distinct())
        {
            var (sha, bytes) = await ShardStore.HashFileAsync(file, ct);
            var store = new ShardStore(Path.GetDirectoryName(file)!);
            result.Add(new InputShard(store, new ShardRef(sha[..16], Path.GetFileName(file), sha, 0, bytes, stage, "", [], runId)));
        }
        return result;
    }

    /// <summary>
    /// The --out folder, created if missing and checked for writing before any work starts, so a typo or a
    /// read-only place is one error line, not a stack trace after minutes of work.
    /// </summary>
    public static string OutDir(string path)
    {
        var full = Path.GetFullPath(path);
        if (File.Exists(full)) throw new ArgumentException($"--out '{path}' is a file, not a folder");
        try
        {
            Directory.CreateDirectory(full);
            var probe = Path.Combine(full, $".write-probe-{Environment.ProcessId}");
            File.WriteAllText(probe, "");
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"--out '{path}' is not a writable folder ({e.Message})", e);
        }
        return full;
    }

    public static Option<string?> RecipeOption() => new("--recipe")
    {
        Description = "Cleaning recipe: default (fineweb for English, swallow for Japanese), fineweb, refinedweb, gopher, c4, swallow, llm-jp, strict, or a recipe .json file (docs/cleaner.md)",
    };

    /// <summary>--set pairs, plus --recipe as Pipeline:Cleaner:Recipe (a recipe file's path made absolute).</summary>
    public static Dictionary<string, string?> Settings(string[]? pairs, string? recipe)
    {
        var settings = Settings(pairs);
        if (!string.IsNullOrEmpty(recipe))
            settings["Pipeline:Cleaner:Recipe"] = recipe.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? Path.GetFullPath(recipe) : recipe;
        return settings;
    }

    public static Dictionary<string, string?> Settings(string[]? pairs)
    {
        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var pair in pairs ?? [])
        {
            var at = pair.IndexOf('=');
            if (at <= 0) throw new ArgumentException($"--set '{pair}': expected KEY=VALUE, for example Pipeline:Crawler:PerHostConcurrency=1");
            var key = pair[..at].Trim();
            if (!key.StartsWith("Pipeline:", StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException($"--set '{pair}': '{key}' is not a configuration key; every key starts with Pipeline: (README, Configuration)");
            settings[key] = pair[(at + 1)..];
        }
        return settings;
    }
}
