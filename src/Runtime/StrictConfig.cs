using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Configuration;

namespace Pipeline.Runtime;

/// <summary>
/// The one way configuration is read: options sections (pipeline.json, PIPELINE__* variables, --set) and JSON
/// config files (train, align). An unknown or misspelled key is an error naming it, a value of the wrong type is an
/// error naming the key, and nonsense values ([Range] and friends on the options classes, checked recursively) are
/// errors naming the key and the rule. Every error is an <see cref="ArgumentException"/>: one line for the user.
/// </summary>
public static class StrictConfig
{
    /// <summary>JSON config files: case-insensitive names, enums by name (an unknown one names the choices), unknown members refused.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNameCaseInsensitive = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        Converters = { new Contracts.NamedEnumConverterFactory() },
    };

    /// <summary>Binds a configuration section strictly and validates it; a missing section gives the defaults.</summary>
    public static T Bind<T>(IConfiguration configuration, string section) where T : class, new() =>
        BindSection<T>(configuration.GetSection(section), section);

    private static T BindSection<T>(IConfiguration section, string name) where T : class, new()
    {
        T value;
        try
        {
            value = section.Get<T>(o => o.ErrorOnUnknownConfiguration = true) ?? new T();
        }
        catch (InvalidOperationException e)
        {
            throw new ArgumentException($"configuration {name}: {Flatten(e)}", e);
        }
        Validate(value, name);
        return value;
    }

    /// <summary>
    /// The root <c>Pipeline</c> section: its own keys (transport, data root, broker, limits) are bound strictly,
    /// and each child is either one of those or a stage section named in <paramref name="stageSections"/> (bound
    /// by its module); anything else, such as a misspelled section name, is an error naming it.
    /// </summary>
    public static T BindRoot<T>(IConfiguration configuration, string section, IEnumerable<string> stageSections) where T : class, new()
    {
        var stages = stageSections.Select(s => s.Split(':')[^1]).ToHashSet(StringComparer.OrdinalIgnoreCase);
        // Keys keep their full paths, so binder errors name them as the user wrote them (Pipeline:Transport).
        var own = configuration.GetSection(section).AsEnumerable()
            .Where(kv => kv.Key.Split(':') is var parts && !(parts.Length > 1 && stages.Contains(parts[1])));
        return BindSection<T>(new ConfigurationBuilder().AddInMemoryCollection(own).Build().GetSection(section), section);
    }

    /// <summary>Reads a JSON config file's text strictly and validates the result.</summary>
    public static T FromJson<T>(string json, string source) where T : class
    {
        if (string.IsNullOrWhiteSpace(json)) throw new ArgumentException($"{source} is empty");
        T? value;
        try
        {
            value = JsonSerializer.Deserialize<T>(json, Json);
        }
        catch (JsonException e)
        {
            // A converter's own message ("value 'stpo' is not skip or stop") does not say where: the path does.
            var where = e.Path is { Length: > 0 } path && !e.Message.Contains(path, StringComparison.Ordinal) ? $" (at {path})" : "";
            throw new ArgumentException($"{source}: {e.Message}{where}", e);
        }
        if (value is null) throw new ArgumentException($"{source} holds null, not a {typeof(T).Name} object");
        Validate(value, source);
        return value;
    }

    /// <summary>Reads a JSON config file strictly; a missing file is an error naming it.</summary>
    public static T FromJsonFile<T>(string path, string what) where T : class
    {
        if (!File.Exists(path)) throw new ArgumentException($"{what} '{path}' does not exist");
        return FromJson<T>(File.ReadAllText(path), $"{what} '{path}'");
    }

    /// <summary>
    /// Checks the data annotations of <paramref name="value"/> and of every options object inside it (lists and
    /// dictionaries included), naming the failing key by its path, e.g. Pipeline:Crawler:PagesPerShard.
    /// </summary>
    public static void Validate(object value, string path)
    {
        var results = new List<ValidationResult>();
        if (!Validator.TryValidateObject(value, new ValidationContext(value), results, validateAllProperties: true))
        {
            var first = results[0];
            throw new ArgumentException($"{path}:{string.Join(",", first.MemberNames)}: {first.ErrorMessage}");
        }
        foreach (var property in value.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0 || !IsOptionsType(property.PropertyType)) continue;
            var child = property.GetValue(value);
            switch (child)
            {
                case null or string:
                    break;
                case IDictionary dictionary:
                    foreach (DictionaryEntry entry in dictionary)
                        if (entry.Value is { } item && IsOptionsType(item.GetType())) Validate(item, $"{path}:{property.Name}:{entry.Key}");
                    break;
                case IEnumerable list:
                    var index = 0;
                    foreach (var item in list)
                    {
                        if (item is not null && IsOptionsType(item.GetType())) Validate(item, $"{path}:{property.Name}:{index}");
                        index++;
                    }
                    break;
                default:
                    Validate(child, $"{path}:{property.Name}");
                    break;
            }
        }
    }

    /// <summary>This project's own classes and records (and collections of them) are walked; framework types are not.</summary>
    private static bool IsOptionsType(Type type)
    {
        if (type.IsGenericType) return type.GetGenericArguments().Any(IsOptionsType);
        return type.IsClass && type.Namespace?.StartsWith("Pipeline", StringComparison.Ordinal) == true;
    }

    private static string Flatten(Exception e)
    {
        // The binder nests the useful message ("'MaxStep' was not found ...", "Failed to convert ... 'maybe' ...").
        var messages = new List<string>();
        for (Exception? x = e; x is not null; x = x.InnerException) messages.Add(x.Message.TrimEnd('.'));
        return string.Join(": ", messages.Distinct());
    }
}
