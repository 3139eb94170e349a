namespace Pipeline.Cli;

/// <summary>Finds what the repository ships (samples/site, tasks/) from the binary's folder or the working directory.</summary>
public static class SampleSite
{
    public static string Folder()
    {
        var relative = Path.Combine("samples", "site");
        var cwd = Path.Combine(Directory.GetCurrentDirectory(), relative);
        return FindAbove(relative, Directory.Exists) ?? (Directory.Exists(cwd) ? cwd : null)
            ?? throw new DirectoryNotFoundException("the sample site (samples/site) was not found; run from the repository or pass --seed");
    }

    /// <summary>The evaluation task files shipped in tasks/ (empty when not run from the repository).</summary>
    public static IReadOnlyList<string> ShippedTasks() =>
        FindAbove("tasks", d => Directory.Exists(d) && Directory.GetFiles(d, "*.yaml").Length > 0) is { } folder
            ? Directory.GetFiles(folder, "*.yaml").Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>The shipped SFT examples (samples/alignment/sft-ja.jsonl), or null when not run from the repository.</summary>
    public static string? ShippedSftData() => ShippedAlignmentData("sft-ja.jsonl");

    /// <summary>A shipped alignment set (samples/alignment/: sft-ja, dpo-ja, rl-ja .jsonl), or null when not run from the repository.</summary>
    public static string? ShippedAlignmentData(string file) => FindAbove(Path.Combine("samples", "alignment", file), File.Exists);

    /// <summary>The first <paramref name="relative"/> path that <paramref name="accept"/> takes, from the binary's folder upwards.</summary>
    private static string? FindAbove(string relative, Func<string, bool> accept)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, relative);
            if (accept(candidate)) return candidate;
        }
        return null;
    }
}
