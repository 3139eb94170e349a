using System.Diagnostics;
using YamlDotNet.RepresentationModel;

namespace Pipeline.Cli.Tests;

/// <summary>compose.yaml describes separate hosts: nothing shared but MinIO, PostgreSQL and RabbitMQ.</summary>
public sealed class ComposeFileTests
{
    /// <summary>The repository's root (where compose.yaml is), found above the test binaries.</summary>
    internal static string Repository()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "compose.yaml"))) return dir.FullName;
        throw new FileNotFoundException("compose.yaml was not found above the test binaries");
    }

    /// <summary>A service's own setting, else the one it takes from the shared anchor ("&lt;&lt;: *service").</summary>
    private static YamlNode? Setting(YamlMappingNode service, string key) =>
        service.Children.TryGetValue(key, out var own) ? own
        : service.Children.TryGetValue("<<", out var shared) && ((YamlMappingNode)shared).Children.TryGetValue(key, out var inherited) ? inherited : null;

    /// <summary>A mapping's keys with those of its merge key ("&lt;&lt;: *anchor") under them, as compose reads it.</summary>
    private static Dictionary<string, string> Merged(YamlMappingNode mapping)
    {
        var merged = mapping.Children.TryGetValue("<<", out var inherited) ? Merged((YamlMappingNode)inherited) : [];
        foreach (var (key, value) in mapping.Children.Where(kv => kv.Key.ToString() != "<<")) merged[key.ToString()] = value.ToString();
        return merged;
    }

    [Fact]
    public void Every_service_has_a_folder_of_its_own_and_exchanges_files_through_the_object_store()
    {
        var yaml = new YamlStream();
        yaml.Load(new StringReader(File.ReadAllText(Path.Combine(Repository(), "compose.yaml"))));
        var services = (YamlMappingNode)((YamlMappingNode)yaml.Documents[0].RootNode)["services"];
        var mountedBy = new Dictionary<string, List<string>>();
        var served = new List<string>();
        foreach (var (key, value) in services.Children)
        {
            var name = ((YamlScalarNode)key).Value!;
            var service = (YamlMappingNode)value;
            if (service.Children.TryGetValue("command", out var command) && ((YamlSequenceNode)command).Children.FirstOrDefault()?.ToString() == "serve")
            {
                served.Add(name);
                var environment = Merged((YamlMappingNode)Setting(service, "environment")!);
                Assert.Equal("S3", environment["PIPELINE__STORAGE__KIND"]);
                Assert.NotNull(environment["PIPELINE__LEDGER__CONNECTIONSTRING"]);
                // Only what the service needs (#26): never MinIO's root credentials, the token only for the dashboard,
                // and no env_file that would hand every .env value to every container.
                Assert.False(Setting(service, "env_file") is not null, $"{name} takes the whole .env");
                Assert.DoesNotContain(environment.Values, v => v.Contains("MINIO_ROOT", StringComparison.Ordinal));
                Assert.Equal(name == "dashboard", environment.Values.Any(v => v.Contains("DASHBOARD_TOKEN", StringComparison.Ordinal)));
            }
            if (Setting(service, "volumes") is YamlSequenceNode volumes)
                foreach (var volume in volumes.Children.Select(v => v.ToString().Split(':')[0]))
                    (mountedBy.TryGetValue(volume, out var list) ? list : mountedBy[volume] = []).Add(name);
            if (service.Children.TryGetValue("ports", out var ports))
                Assert.All(((YamlSequenceNode)ports).Children, port => Assert.StartsWith("127.0.0.1:", port.ToString()));
        }
        Assert.Equal(["crawler", "cleaner", "dedup", "tokenizer", "trainer", "evaluator", "dashboard"], served);
        Assert.All(mountedBy, kv => Assert.True(kv.Value.Count == 1, $"volume {kv.Key} is shared by {string.Join(", ", kv.Value)}"));
        Assert.All(served, service => Assert.Contains(mountedBy, kv => kv.Value.SequenceEqual([service])));
    }

    [Fact]
    public void Images_are_pinned_and_a_missing_environment_value_is_named()
    {
        var text = File.ReadAllText(Path.Combine(Repository(), "compose.yaml"));
        foreach (System.Text.RegularExpressions.Match image in System.Text.RegularExpressions.Regex.Matches(text, @"image:\s*(\S+)"))
            Assert.True(image.Groups[1].Value.Contains(':'), $"image {image.Groups[1].Value} is not pinned to a tag");
        var folder = Directory.CreateTempSubdirectory("compose-").FullName;
        try
        {
            File.Copy(Path.Combine(Repository(), "compose.yaml"), Path.Combine(folder, "compose.yaml"));
            var start = new ProcessStartInfo("docker-compose", ["config", "--quiet"]) { WorkingDirectory = folder, RedirectStandardError = true, RedirectStandardOutput = true };
            using var process = Process.Start(start)!;
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            Assert.NotEqual(0, process.ExitCode);
            Assert.Contains("in .env (see .env.example)", error);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Compose_accepts_the_file_with_the_example_environment()
    {
        // docker-compose (the Debian package, installed by .ci/run) checks the file without a Docker engine.
        var repository = Repository();
        var folder = Directory.CreateTempSubdirectory("compose-").FullName;
        try
        {
            File.Copy(Path.Combine(repository, "compose.yaml"), Path.Combine(folder, "compose.yaml"));
            File.Copy(Path.Combine(repository, ".env.example"), Path.Combine(folder, ".env"));
            var start = new ProcessStartInfo("docker-compose", ["config", "--quiet"]) { WorkingDirectory = folder, RedirectStandardError = true, RedirectStandardOutput = true };
            using var process = Process.Start(start)!;
            var error = process.StandardError.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, $"docker-compose config: {error}");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void The_image_runs_as_a_user_with_the_shipped_tasks_and_its_build_context_leaves_out_outputs_and_secrets()
    {
        // No Docker engine here: the Dockerfile's instructions and the ignore file are read as Docker reads them.
        var repository = Repository();
        var instructions = File.ReadAllLines(Path.Combine(repository, "Dockerfile")).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        var final = instructions.SkipWhile(l => !l.StartsWith("FROM ${RUNTIME_IMAGE}", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(final);
        Assert.Contains("COPY tasks ./tasks", final);
        var user = final.Last(l => l.StartsWith("USER ", StringComparison.Ordinal))["USER ".Length..].Trim();
        Assert.NotEqual("root", user);
        Assert.NotEqual("0", user);
        Assert.Contains(instructions, l => l.Contains("-p:TorchBackend=$TORCH_BACKEND", StringComparison.Ordinal));
        var ignored = File.ReadAllLines(Path.Combine(repository, ".dockerignore")).Where(l => l.Length > 0 && !l.StartsWith('#')).ToHashSet();
        Assert.Superset(new HashSet<string> { "**/bin/", "**/obj/", "runs/", ".env", "TestResults/" }, ignored);
    }
}
