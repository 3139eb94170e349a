using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Pipeline.Contracts;

/// <summary>
/// The names configuration files, messages and checkpoints use for an enum's values (modes such as "bf16" or
/// "all-occurrences"): the member's <see cref="JsonStringEnumMemberNameAttribute"/>, else its name in lower case.
/// </summary>
public static class NamedEnum
{
    private static (object Value, string Name)[] Members(Type type) => type.GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (f.GetValue(null)!, f.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name ?? f.Name.ToLowerInvariant()))
        .ToArray();

    public static string Name(Enum value) => Members(value.GetType()).First(m => m.Value.Equals(value)).Name;

    /// <summary>The names a value may have, for error messages: "auto, fp32 or bf16".</summary>
    public static string Choices(Type type)
    {
        var names = Members(type).Select(m => m.Name).ToArray();
        return names.Length == 1 ? names[0] : string.Join(", ", names[..^1]) + " or " + names[^1];
    }

    /// <summary>The value with this name (case-insensitive), or an error naming <paramref name="what"/> and the choices.</summary>
    public static object Parse(Type type, string? text, string what)
    {
        var members = Members(type);
        var index = Array.FindIndex(members, m => m.Name.Equals(text, StringComparison.OrdinalIgnoreCase));
        return index >= 0 ? members[index].Value : throw new FormatException($"{what} '{text}' is not {Choices(type)}");
    }
}

/// <summary>Reads and writes an enum by its <see cref="NamedEnum"/> name; an unknown name is an error listing the choices.</summary>
public sealed class NamedEnumConverter<T> : JsonConverter<T> where T : struct, Enum
{
    public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String) throw new JsonException($"expected {NamedEnum.Choices(typeof(T))} as a string");
        try
        {
            return (T)NamedEnum.Parse(typeof(T), reader.GetString(), "value");
        }
        catch (FormatException e)
        {
            throw new JsonException(e.Message);
        }
    }

    public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(NamedEnum.Name(value));
}

/// <summary><see cref="NamedEnumConverter{T}"/> for every enum: for serializer options that read configuration.</summary>
public sealed class NamedEnumConverterFactory : JsonConverterFactory
{
    public override bool CanConvert(Type typeToConvert) => typeToConvert.IsEnum;

    public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
        (JsonConverter)Activator.CreateInstance(typeof(NamedEnumConverter<>).MakeGenericType(typeToConvert))!;
}
