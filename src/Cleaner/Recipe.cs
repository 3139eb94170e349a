using System.Text.Json;
using Pipeline.Cleaner.Filters;
using Pipeline.Runtime;
using Pipeline.Storage;

namespace Pipeline.Cleaner;

/// <summary>
/// A named cleaning recipe: the ordered filter steps applied to a document after language identification, per
/// language (datatrove's pipeline as data). Shipped recipes live in <c>recipes/NAME.json</c> next to the binaries
/// (<c>src/Cleaner/Recipes</c>); <c>Pipeline:Cleaner:Recipe</c> names one, or gives the path of a recipe file.
/// </summary>
public sealed class Recipe
{
    public const string Default = "default";
    public static string ShippedFolder => Path.Combine(AppContext.BaseDirectory, "recipes");

    /// <summary>Every filter a recipe may name, with the published defaults of its thresholds.</summary>
    public static readonly IReadOnlyDictionary<string, Func<IReadOnlyList<string>, ICleanerStep>> Filters =
        new Dictionary<string, Func<IReadOnlyList<string>, ICleanerStep>>(StringComparer.OrdinalIgnoreCase)
        {
            ["line_corrections"] = _ => new RefinedWebLineFilter(),
            ["repeated_lines"] = _ => new RepeatedLineFilter(),
            ["gopher_repetition"] = _ => new GopherRepetitionFilter(),
            ["gopher_quality"] = _ => new GopherQualityFilter(),
            ["c4"] = _ => new C4Filter(),
            ["fineweb"] = _ => new FineWebFilter(),
            ["japanese_quality"] = ngWords => new JapaneseQualityFilter(ngWords),
            ["japanese_lines"] = _ => new JapaneseLineFilter(),
            ["compression_ratio"] = _ => new CompressionRatioFilter(),
            ["quality"] = _ => new QualityFilter(),
        };

    /// <summary>A step as the recipe configured it; <see cref="ExemptCode"/> steps see only the document's prose lines.</summary>
    public sealed record Step(ICleanerStep Filter, bool ExemptCode);

    private readonly Dictionary<string, IReadOnlyList<Step>> _byLanguage;
    private IReadOnlyList<Step>? _any;

    private Recipe(string name, string fingerprint, Dictionary<string, IReadOnlyList<Step>> byLanguage, IReadOnlyList<Step>? any)
    {
        Name = name;
        Fingerprint = fingerprint;
        _byLanguage = byLanguage;
        _any = any;
    }

    public string Name { get; }

    /// <summary>A hash of every recipe file that went into this recipe: a changed recipe gives new shard ids.</summary>
    public string Fingerprint { get; }

    /// <summary>Every configured step, of every language, in order.</summary>
    public IEnumerable<Step> AllSteps => _byLanguage.Values.SelectMany(s => s).Concat(_any ?? []);

    /// <summary>
    /// The names documents can be removed under, in the order the cleaner applies them: extraction ("empty") and
    /// language identification first, then each step of the recipe (languages in <paramref name="languages"/>' order),
    /// then exact dedup. The report lists its removals in this order.
    /// </summary>
    public IReadOnlyList<string> RemovalOrder(IEnumerable<string> languages) =>
        ["empty", "language", .. languages.SelectMany(l => _byLanguage.TryGetValue(l, out var steps) ? steps : _any ?? []).Concat(_any ?? [])
            .Select(s => s.Filter.Name).Distinct(), "exact_dedup"];

    /// <summary>The steps for a document in <paramref name="language"/>.</summary>
    public IReadOnlyList<Step> StepsFor(string language) =>
        _byLanguage.TryGetValue(language, out var steps) ? steps : _any ?? throw new InvalidOperationException($"recipe '{Name}' has no steps for language '{language}'");

    /// <summary>
    /// Loads the recipe <paramref name="nameOrPath"/>, applies Pipeline:Cleaner:Filters overrides, and checks that it
    /// covers every kept language. Every problem is an ArgumentException naming the recipe and the key.
    /// </summary>
    public static Recipe Load(string nameOrPath, CleanerOptions options, IReadOnlyList<string> ngWords)
    {
        var files = new List<string>();
        var root = Read(nameOrPath, files);
        var byLanguage = new Dictionary<string, IReadOnlyList<Step>>(StringComparer.OrdinalIgnoreCase);
        IReadOnlyList<Step>? any = null;
        if (root.File.ByLanguage is { } languages)
        {
            foreach (var (language, recipeName) in languages)
            {
                var inner = Read(recipeName, files);
                if (inner.File.Steps is null) throw new ArgumentException($"recipe '{root.Name}': byLanguage '{language}' names '{recipeName}', which has no steps of its own");
                byLanguage[language] = Build(inner, ngWords);
            }
        }
        else any = Build(root, ngWords);

        var recipe = new Recipe(root.Name, StableId.ConfigHash(files), byLanguage, any);
        recipe.ApplyOverrides(options);
        foreach (var language in options.Languages.Where(l => any is null && !byLanguage.ContainsKey(l)))
            throw new ArgumentException($"recipe '{root.Name}' has no steps for '{language}', a language in Pipeline:Cleaner:Languages");
        return recipe;
    }

    private sealed record Loaded(string Name, RecipeFile File);

    private static Loaded Read(string nameOrPath, List<string> texts)
    {
        string path;
        if (nameOrPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) path = Path.GetFullPath(nameOrPath);
        else
        {
            SafeName.Check(nameOrPath, "recipe name");
            path = Path.Combine(ShippedFolder, nameOrPath + ".json");
            if (!File.Exists(path))
            {
                var shipped = Directory.Exists(ShippedFolder) ? Directory.GetFiles(ShippedFolder, "*.json").Select(Path.GetFileNameWithoutExtension).Order().ToList() : [];
                throw new ArgumentException($"Pipeline:Cleaner:Recipe: there is no recipe named '{nameOrPath}' (recipes: {string.Join(", ", shipped)}; or give a .json file)");
            }
        }
        var text = File.Exists(path) ? File.ReadAllText(path) : throw new ArgumentException($"recipe file '{path}' does not exist");
        texts.Add(text);
        var file = StrictConfig.FromJson<RecipeFile>(text, $"recipe '{nameOrPath}'");
        if ((file.Steps is null) == (file.ByLanguage is null))
            throw new ArgumentException($"recipe '{nameOrPath}' must have either 'steps' or 'byLanguage'");
        return new Loaded(Path.GetFileNameWithoutExtension(path), file);
    }

    private static List<Step> Build(Loaded recipe, IReadOnlyList<string> ngWords)
    {
        var steps = new List<Step>();
        foreach (var (entry, i) in recipe.File.Steps!.Select((s, i) => (s, i)))
        {
            if (!Filters.TryGetValue(entry.Filter, out var create))
                throw new ArgumentException($"recipe '{recipe.Name}': steps[{i}]: there is no filter named '{entry.Filter}' (filters: {string.Join(", ", Filters.Keys)})");
            var filter = create(ngWords);
            foreach (var (key, value) in entry.Settings ?? [])
                Set(filter, key, value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText(), $"recipe '{recipe.Name}': steps[{i}]:settings:{key}");
            if (filter is IPreparedStep prepared) prepared.Prepare($"recipe '{recipe.Name}': steps[{i}]");
            steps.Add(new Step(filter, entry.ExemptCode));
        }
        return steps;
    }

    /// <summary>Pipeline:Cleaner:Filters:&lt;name&gt;:&lt;property&gt; applies to every step of that filter; Enabled=false drops them.</summary>
    private void ApplyOverrides(CleanerOptions options)
    {
        foreach (var (name, settings) in options.Filters)
        {
            if (!Filters.ContainsKey(name))
                throw new ArgumentException($"Pipeline:Cleaner:Filters:{name}: there is no filter named '{name}' (filters: {string.Join(", ", Filters.Keys)})");
            if (!AllSteps.Any(s => s.Filter.Name.Equals(name, StringComparison.OrdinalIgnoreCase)))
                throw new ArgumentException($"Pipeline:Cleaner:Filters:{name}: recipe '{Name}' has no '{name}' step");
            var disabled = false;
            foreach (var (key, value) in settings)
            {
                var where = $"Pipeline:Cleaner:Filters:{name}:{key}";
                if (key.Equals("Enabled", StringComparison.OrdinalIgnoreCase))
                {
                    if (!bool.TryParse(value, out var enabled)) throw new ArgumentException($"{where}: '{value}' is not true or false");
                    disabled |= !enabled;
                    continue;
                }
                foreach (var step in AllSteps.Where(s => s.Filter.Name.Equals(name, StringComparison.OrdinalIgnoreCase)))
                    Set(step.Filter, key, value, where);
            }
            // A step that loads what its settings name loads it again with the overridden ones.
            foreach (var step in AllSteps.Where(s => s.Filter.Name.Equals(name, StringComparison.OrdinalIgnoreCase)))
                if (step.Filter is IPreparedStep prepared) prepared.Prepare($"Pipeline:Cleaner:Filters:{name}");
            if (!disabled) continue;
            foreach (var language in _byLanguage.Keys.ToList())
                _byLanguage[language] = _byLanguage[language].Where(s => !s.Filter.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).ToList();
            _any = _any?.Where(s => !s.Filter.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).ToList();
        }
    }

    private static void Set(ICleanerStep filter, string key, string value, string where)
    {
        var property = filter.GetType().GetProperty(key, System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.IgnoreCase);
        if (property is { CanWrite: true } && property.PropertyType == typeof(IReadOnlyList<(int N, double Max)>))
        {
            property.SetValue(filter, ParseThresholds(value, where));
            return;
        }
        if (property is null || !property.CanWrite || !(property.PropertyType.IsPrimitive || property.PropertyType.IsEnum || property.PropertyType == typeof(string)))
            throw new ArgumentException($"{where}: the filter '{filter.Name}' has no settable number, flag or mode named '{key}'");
        if (property.PropertyType.IsEnum)
        {
            try
            {
                property.SetValue(filter, Contracts.NamedEnum.Parse(property.PropertyType, value, where));
            }
            catch (FormatException e)
            {
                throw new ArgumentException(e.Message);
            }
            return;
        }
        try
        {
            property.SetValue(filter, Convert.ChangeType(value, property.PropertyType, System.Globalization.CultureInfo.InvariantCulture));
        }
        catch (FormatException)
        {
            throw new ArgumentException($"{where}: '{value}' is not a valid {property.PropertyType.Name}");
        }
    }

    /// <summary>A threshold per n ({ "5": 0.15, "6": 0.14 }), as Gopher's n-gram rules are written.</summary>
    private static IReadOnlyList<(int N, double Max)> ParseThresholds(string value, string where)
    {
        Dictionary<string, double>? byN;
        try
        {
            byN = JsonSerializer.Deserialize<Dictionary<string, double>>(value);
        }
        catch (JsonException)
        {
            byN = null;
        }
        if (byN is null || byN.Count == 0)
            throw new ArgumentException($"{where}: '{value}' is not a threshold per n-gram size, e.g. {{ \"5\": 0.15, \"6\": 0.14 }}");
        var thresholds = new List<(int N, double Max)>();
        foreach (var (n, max) in byN)
        {
            if (!int.TryParse(n, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var size) || size < 1)
                throw new ArgumentException($"{where}: '{n}' is not an n-gram size (a whole number from 1)");
            thresholds.Add((size, max));
        }
        return thresholds.OrderBy(t => t.N).ToList();
    }
}

/// <summary>A recipe file (JSON): either an ordered list of steps, or a recipe name per language.</summary>
public sealed class RecipeFile
{
    public string Description { get; set; } = "";
    /// <summary>The paper or code the steps and thresholds come from.</summary>
    public string Source { get; set; } = "";
    public List<RecipeStep>? Steps { get; set; }
    public Dictionary<string, string>? ByLanguage { get; set; }
}

public sealed class RecipeStep
{
    public string Filter { get; set; } = "";
    /// <summary>Threshold settings by property name, e.g. { "FilterNoTerminalPunctuation": false }.</summary>
    public Dictionary<string, JsonElement>? Settings { get; set; }
    /// <summary>Apply the step to prose lines only: lines from &lt;pre&gt;/&lt;code&gt; blocks are exempt and kept.</summary>
    public bool ExemptCode { get; set; }
}
