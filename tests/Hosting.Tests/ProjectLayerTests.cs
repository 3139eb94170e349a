using System.Xml.Linq;

namespace Pipeline.Hosting.Tests;

/// <summary>
/// The project references form the layers docs/architecture.md draws: contracts and storage at the bottom, algorithm
/// libraries above them with no bus, the wiring (Hosting) and each stage's service project above those, the CLI on top.
/// </summary>
public sealed class ProjectLayerTests
{
    private static readonly string[] Stages = ["Crawler", "Cleaner", "Dedup", "Tokenizer", "Trainer", "Evaluator", "Alignment"];

    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Pipeline.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("Pipeline.sln not found above the test binaries");
    }

    /// <summary>Every project under src/ by name ("Crawler", "Crawler.Service"), with the projects and packages it references.</summary>
    private static Dictionary<string, (HashSet<string> Projects, HashSet<string> Packages)> Projects()
    {
        var projects = new Dictionary<string, (HashSet<string>, HashSet<string>)>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Root(), "src"), "*.csproj", SearchOption.AllDirectories))
        {
            var xml = XDocument.Load(file);
            var references = xml.Descendants("ProjectReference").Select(r => Path.GetFileNameWithoutExtension(r.Attribute("Include")!.Value)).ToHashSet();
            var packages = xml.Descendants("PackageReference").Select(r => r.Attribute("Include")!.Value).ToHashSet();
            projects[Path.GetFileNameWithoutExtension(file)] = (references, packages);
        }
        return projects;
    }

    private static HashSet<string> Closure(Dictionary<string, (HashSet<string> Projects, HashSet<string> Packages)> projects, string start)
    {
        var seen = new HashSet<string>();
        var stack = new Stack<string>(projects[start].Projects);
        while (stack.TryPop(out var next))
            if (seen.Add(next))
                foreach (var reference in projects[next].Projects) stack.Push(reference);
        return seen;
    }

    [Fact]
    public void Stage_libraries_reference_no_other_stage_and_no_bus()
    {
        var projects = Projects();
        Assert.Empty(projects["Contracts"].Projects);
        foreach (var stage in Stages)
        {
            var closure = Closure(projects, stage);
            Assert.DoesNotContain("Hosting", closure);
            Assert.Empty(closure.Intersect(Stages.Concat(Stages.Select(s => s + ".Service"))));
            Assert.All(closure.Append(stage), p => Assert.DoesNotContain(projects[p].Packages, package => package.StartsWith("MassTransit", StringComparison.Ordinal)));
        }
    }

    [Fact]
    public void A_stage_service_is_its_library_on_the_wiring()
    {
        var projects = Projects();
        foreach (var stage in Stages)
            Assert.Equal(new[] { "Hosting", stage }.Order(), projects[stage + ".Service"].Projects.Order());
        Assert.Contains("MassTransit", projects["Hosting"].Packages);
    }
}
