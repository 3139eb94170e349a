using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Pipeline.Evaluator.Tasks;

/// <summary>
/// The part of Jinja that lm-evaluation-harness task templates use for doc_to_text, doc_to_target and
/// doc_to_choice: text with <c>{{ expression }}</c> holes, where an expression is a field of the document, a string or
/// number literal, a list <c>[a, b]</c>, indexing <c>choices[label]</c>, the string methods <c>strip()</c>,
/// <c>lower()</c>, <c>upper()</c>, attribute access on mappings, dict literals for label maps, and <c>+</c> on strings,
/// numbers and lists. Hand-written: no Jinja engine is
/// published for .NET (Fluid and Scriban implement Liquid, whose syntax differs: <c>| strip</c> rather than
/// <c>.strip()</c>). Statements (<c>{% %}</c>) and filters are refused by name, never silently mis-rendered.
/// </summary>
public static class JinjaExpressions
{
    /// <summary>Renders a template; an expression's list or number value is written as Python would print it.</summary>
    public static string Render(string template, JsonObject doc)
    {
        if (template.Contains("{%")) throw new InvalidDataException($"template '{template}': Jinja statements ({{% ... %}}) are not supported; use expressions");
        var output = new StringBuilder();
        var at = 0;
        while (true)
        {
            var open = template.IndexOf("{{", at, StringComparison.Ordinal);
            if (open < 0)
            {
                output.Append(template, at, template.Length - at);
                return output.ToString();
            }
            var close = template.IndexOf("}}", open + 2, StringComparison.Ordinal);
            if (close < 0) throw new InvalidDataException($"template '{template}': '{{{{' without '}}}}'");
            output.Append(template, at, open - at);
            output.Append(Text(Evaluate(template[(open + 2)..close], doc)));
            at = close + 2;
        }
    }

    /// <summary>The value of a template that is one expression (a list for doc_to_choice, an index for doc_to_target).</summary>
    public static JsonNode? Value(string template, JsonObject doc)
    {
        var trimmed = template.Trim();
        if (trimmed.StartsWith("{{") && trimmed.EndsWith("}}") && trimmed.IndexOf("{{", 2, StringComparison.Ordinal) < 0)
            return Evaluate(trimmed[2..^2], doc);
        return JsonValue.Create(Render(template, doc));
    }

    public static JsonNode? Evaluate(string expression, JsonObject doc)
    {
        var parser = new Parser(expression, doc);
        var value = parser.Expression();
        parser.End();
        return value;
    }

    /// <summary>A value as Jinja prints it: strings as they are, lists as Python's repr.</summary>
    public static string Text(JsonNode? value) => value switch
    {
        null => "None",
        JsonArray list => "[" + string.Join(", ", list.Select(Repr)) + "]",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonValue v when v.TryGetValue<bool>(out var b) => b ? "True" : "False",
        _ => value.ToJsonString(),
    };

    private static string Repr(JsonNode? value) =>
        value is JsonValue v && v.TryGetValue<string>(out var s) ? "'" + s.Replace("\\", "\\\\").Replace("'", "\\'") + "'" : Text(value);

    private sealed class Parser(string text, JsonObject doc)
    {
        private int _at;

        public JsonNode? Expression()
        {
            var value = Postfix();
            while (Skip('+')) value = Add(value, Postfix());
            return value;
        }

        public void End()
        {
            SkipSpace();
            if (_at < text.Length)
            {
                var rest = text[_at..];
                throw new InvalidDataException(rest.StartsWith('|')
                    ? $"expression '{text}': Jinja filters ('{rest.Trim()}') are not supported"
                    : $"expression '{text}': unexpected '{rest.Trim()}'");
            }
        }

        private JsonNode? Postfix()
        {
            var value = Primary();
            while (true)
            {
                if (Skip('['))
                {
                    var index = Expression();
                    Expect(']');
                    value = Index(value, index);
                }
                else if (Skip('.'))
                {
                    var name = Identifier();
                    if (!Skip('('))
                    {
                        // Attribute access on a mapping, as Jinja allows: answers.text
                        value = value is JsonObject obj && obj.TryGetPropertyValue(name, out var member) ? member : throw Error($"no attribute '{name}'");
                        continue;
                    }
                    Expect(')');
                    var s = value is JsonValue v && v.TryGetValue<string>(out var str) ? str : throw Error($"'.{name}()' needs a string");
                    value = name switch
                    {
                        "strip" => s.Trim(),
                        "lower" => s.ToLowerInvariant(),
                        "upper" => s.ToUpperInvariant(),
                        _ => throw Error($"method '{name}' is not supported (strip, lower, upper)"),
                    };
                }
                else return value;
            }
        }

        private JsonNode? Primary()
        {
            SkipSpace();
            if (_at >= text.Length) throw Error("an expression is missing");
            var c = text[_at];
            if (c is '"' or '\'') return String(c);
            if (char.IsDigit(c) || c == '-') return Number();
            if (Skip('('))
            {
                var inner = Expression();
                Expect(')');
                return inner;
            }
            if (Skip('{'))
            {
                // A dict literal, for label maps: {'entailment': 0, 'contradiction': 1}[label]
                var dict = new JsonObject();
                if (!Skip('}'))
                {
                    do
                    {
                        var key = Expression() is JsonValue k && k.TryGetValue<string>(out var keyText) ? keyText : throw Error("dict keys must be strings");
                        Expect(':');
                        dict[key] = Expression()?.DeepClone();
                    }
                    while (Skip(','));
                    Expect('}');
                }
                return dict;
            }
            if (Skip('['))
            {
                var list = new JsonArray();
                if (!Skip(']'))
                {
                    do list.Add(Expression()?.DeepClone()); while (Skip(','));
                    Expect(']');
                }
                return list;
            }
            var name = Identifier();
            return doc.TryGetPropertyValue(name, out var field) ? field : throw Error($"the document has no field '{name}'");
        }

        private JsonNode? String(char quote)
        {
            _at++;
            var builder = new StringBuilder();
            while (_at < text.Length && text[_at] != quote)
            {
                if (text[_at] == '\\' && _at + 1 < text.Length)
                {
                    _at++;
                    builder.Append(text[_at] switch { 'n' => '\n', 't' => '\t', var other => other });
                }
                else builder.Append(text[_at]);
                _at++;
            }
            if (_at >= text.Length) throw Error("a string literal is not closed");
            _at++;
            return JsonValue.Create(builder.ToString());
        }

        private JsonNode? Number()
        {
            var start = _at;
            _at++;
            while (_at < text.Length && (char.IsDigit(text[_at]) || text[_at] == '.')) _at++;
            var literal = text[start.._at];
            return literal.Contains('.') ? JsonValue.Create(double.Parse(literal, CultureInfo.InvariantCulture)) : JsonValue.Create(long.Parse(literal, CultureInfo.InvariantCulture));
        }

        private string Identifier()
        {
            SkipSpace();
            var start = _at;
            while (_at < text.Length && (char.IsLetterOrDigit(text[_at]) || text[_at] == '_')) _at++;
            if (start == _at) throw Error($"unexpected '{(start < text.Length ? text[start..] : "end")}'");
            return text[start.._at];
        }

        private static JsonNode? Index(JsonNode? value, JsonNode? index)
        {
            if (value is JsonArray list && index is JsonValue i && i.TryGetValue<long>(out var n))
                return n >= 0 && n < list.Count ? list[(int)n] : throw new InvalidDataException($"index {n} is out of range for a list of {list.Count}");
            if (value is JsonArray && index is JsonValue j && j.TryGetValue<int>(out var m)) return Index(value, JsonValue.Create((long)m));
            if (value is JsonArray && index is JsonValue s && long.TryParse(s.ToString(), out var parsed)) return Index(value, JsonValue.Create(parsed));
            if (value is JsonObject obj && index is JsonValue key && key.TryGetValue<string>(out var k)) return obj[k];
            if (value is JsonValue str && str.TryGetValue<string>(out var text) && index is JsonValue p && p.TryGetValue<long>(out var at))
                return JsonValue.Create(text[(int)at].ToString());
            throw new InvalidDataException($"cannot index {value?.ToJsonString() ?? "None"} with {index?.ToJsonString() ?? "None"}");
        }

        private static JsonNode? Add(JsonNode? a, JsonNode? b)
        {
            if (a is JsonArray x && b is JsonArray y) return new JsonArray([.. x.Select(n => n?.DeepClone()), .. y.Select(n => n?.DeepClone())]);
            if (a is JsonValue p && b is JsonValue q && p.TryGetValue<string>(out var s) && q.TryGetValue<string>(out var t)) return JsonValue.Create(s + t);
            if (a is JsonValue m && b is JsonValue n && m.TryGetValue<double>(out var d) && n.TryGetValue<double>(out var e)) return JsonValue.Create(d + e);
            throw new InvalidDataException($"cannot add {a?.ToJsonString()} and {b?.ToJsonString()}");
        }

        private bool Skip(char c)
        {
            SkipSpace();
            if (_at < text.Length && text[_at] == c)
            {
                _at++;
                return true;
            }
            return false;
        }

        private void Expect(char c)
        {
            if (!Skip(c)) throw Error($"'{c}' expected");
        }

        private void SkipSpace()
        {
            while (_at < text.Length && char.IsWhiteSpace(text[_at])) _at++;
        }

        private InvalidDataException Error(string problem) => new($"expression '{text}' at {_at}: {problem}");
    }
}
