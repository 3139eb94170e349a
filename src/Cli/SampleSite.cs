namespace Pipeline.Cli;

/// <summary>Finds the shipped sample web site (samples/site) from the binary's folder or the working directory.</summary>
public static class SampleSite
{
    public static string Folder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "samples", "site");
            if (Directory.Exists(candidate)) return candidate;
        }
        var cwd = Path.Combine(Directory.GetCurrentDirectory(), "samples", "site");
        if (Directory.Exists(cwd)) return cwd;
        throw new DirectoryNotFoundException("the sample site (samples/site) was not found; run from the repository or pass --seed");
    }

    /// <summary>The evaluation task files shipped in tasks/ (empty when not run from the repository).</summary>
    public static IReadOnlyList<string> ShippedTasks()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tasks");
            if (Directory.Exists(candidate) && Directory.GetFiles(candidate, "*.yaml").Length > 0)
                return Directory.GetFiles(candidate, "*.yaml").Order(StringComparer.Ordinal).ToList();
        }
        return [];
    }
}
