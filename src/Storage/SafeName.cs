using System.Text.RegularExpressions;

namespace Pipeline.Storage;

/// <summary>
/// Names that become folder names (run names, aligned and merged model names): one path segment of letters,
/// digits, '.', '_' and '-', starting with a letter or digit, so that no name can leave the folder it is put in.
/// </summary>
public static partial class SafeName
{
    public static string Check(string? name, string what)
    {
        if (string.IsNullOrEmpty(name) || !Pattern().IsMatch(name))
            throw new ArgumentException($"{what} '{name}' is not a valid name: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit (it becomes a folder name)");
        return name;
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    private static partial Regex Pattern();
}
