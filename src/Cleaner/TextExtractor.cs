using System.Text;
using AngleSharp.Dom;
using AngleSharp.Html.Parser;

namespace Pipeline.Cleaner;

/// <summary>
/// Main-text extraction in the spirit of jusText/trafilatura: drop non-content elements, then keep block elements
/// whose link density is low, as lines; headings, paragraphs, list items, table cells and code blocks survive.
/// Paragraphs (a heading, a paragraph, a list, a table, a code block) are separated by a blank line.
/// </summary>
public static class TextExtractor
{
    private static readonly HtmlParser Parser = new(new HtmlParserOptions { IsScripting = false });

    private static readonly string[] Removed =
        ["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe", "svg", "button", "select", "template", "object"];

    private static readonly HashSet<string> Blocks = new(StringComparer.OrdinalIgnoreCase)
        { "P", "H1", "H2", "H3", "H4", "H5", "H6", "LI", "PRE", "TD", "TH", "DT", "DD", "BLOCKQUOTE", "CAPTION", "FIGCAPTION" };

    public const double MaxLinkDensity = 0.5;

    private const string LineNumberGutters =
        "td.listing_lines,td.linenos,div.linenodiv,span.linenos,td.gutter,td.rouge-gutter,td.blob-num,span.line-numbers-rows,td.hljs-ln-numbers,td.code-line-numbers";

    /// <summary>An element matched as boilerplate only by its class or id is removed when its text is shorter than this.</summary>
    public const int MaxBoilerplateChars = 1000;

    /// <param name="CodeLines">The lines of the text that came from code: code &lt;pre&gt; blocks, and blocks that are all &lt;code&gt;.</param>
    public sealed record Extracted(string Title, string Text, IReadOnlyList<string> CodeLines);

    public static Extracted Extract(string html)
    {
        using var document = Parser.ParseDocument(html);
        var title = Collapse(document.Title ?? "");
        foreach (var element in document.QuerySelectorAll(string.Join(',', Removed)).ToList())
            element.Remove();
        // Boilerplate by class or role: cookie banners, share bars, breadcrumbs, footers written as <div class="footer">. A class or id match is only a hint, so
        // only short elements go: Python's docs for http.cookies keep their whole text in <section id="module-http.cookies">.
        foreach (var element in document.QuerySelectorAll("[role=navigation]").ToList())
            element.Remove();
        // Line-number gutters of code listings (gtk-doc, Pygments, Rouge, highlight.js, Prism, GitHub) are a column of
        // numbers beside the code, never text: a page with five listings repeated "1 2 3 4 5" as lines.
        foreach (var element in document.QuerySelectorAll(LineNumberGutters).ToList())
            element.Remove();
        foreach (var element in document.QuerySelectorAll("[class*=cookie],[class*=share],[class*=breadcrumb],[id*=cookie],[class~=footer],[id=footer],[role=contentinfo]").ToList())
            if (element.TextContent.Length < MaxBoilerplateChars) element.Remove();

        var body = document.Body;
        if (body is null) return new Extracted(title, "", []);
        var output = new Output();
        Walk(body, output);
        return new Extracted(title, output.Text.ToString().Trim(), output.Code);
    }

    /// <summary>The text so far, its code lines, and the paragraph the last block went into.</summary>
    private sealed class Output
    {
        public StringBuilder Text { get; } = new();
        public List<string> Code { get; } = [];
        public IElement? Paragraph { get; set; }
    }

    /// <summary>
    /// The paragraph a block is part of: a list's items, a table's cells and a definition list's entries are lines of
    /// one paragraph (the list, the table); any other block is a paragraph of its own. Paragraphs are separated by a
    /// blank line, as Gopher's and datatrove's paragraph rules expect.
    /// </summary>
    private static IElement ParagraphOf(IElement block) => block.TagName switch
    {
        "LI" => OutermostList(block),
        "TD" or "TH" or "CAPTION" => block.Closest("table") ?? block,
        "DT" or "DD" => block.Closest("dl") ?? block,
        _ => block,
    };

    // Elements that start a box of their own: a run of text and inline elements between two of them (or beside one)
    // is an anonymous block, as in CSS. Everything else (a, span, code, em, ...) is inline.
    private static readonly HashSet<string> Boxes = new(Blocks, StringComparer.OrdinalIgnoreCase)
    {
        "DIV", "SECTION", "ARTICLE", "MAIN", "UL", "OL", "DL", "TABLE", "THEAD", "TBODY", "TFOOT", "TR", "FIGURE", "HR",
        "ADDRESS", "DETAILS", "SUMMARY", "CENTER", "BODY", "HTML", "FIELDSET", "LEGEND", "HGROUP", "DIALOG", "MENU",
    };

    // A nested list is lines of the list it is nested in.
    private static IElement OutermostList(IElement item)
    {
        var list = item.Closest("ul,ol");
        while (list?.ParentElement?.Closest("li")?.Closest("ul,ol") is { } outer) list = outer;
        return list ?? item;
    }

    private static void Walk(IElement element, Output output)
    {
        // Text beside boxes: the prose of Publican's and DocBook's <div class="para">, whose inline <code> and <a>
        // made it look like a container, and a list item's own text before its nested list.
        List<INode>? run = null;
        foreach (var node in element.ChildNodes)
        {
            if (node is not IElement child || !IsBox(child))
            {
                if (node is IText or IElement) (run ??= []).Add(node);
                continue;
            }
            if (run is not null) EmitRun(element, run, output);
            run = null;
            if (Blocks.Contains(child.TagName) && !child.Children.Any(IsBox)) EmitBlock(child, output);
            else Walk(child, output);
        }
        if (run is not null) EmitRun(element, run, output);
    }

    // An inline element that holds a box (a <span> or <a> around a <div>) is walked as a box.
    private static bool IsBox(IElement element) => Boxes.Contains(element.TagName) || element.Children.Any(IsBox);

    private static void EmitRun(IElement parent, List<INode> run, Output output)
    {
        // Separators between links ("|", "»") are not text.
        if (!run.Any(n => n.TextContent.Any(char.IsLetterOrDigit))) return;
        // All of the parent is inline (a leaf <div>, a list item without a nested list): the parent is the block.
        if (run.Count == parent.ChildNodes.Count(n => n is IText or IElement))
        {
            EmitBlock(parent, output);
            return;
        }
        // Else the run as an element of its own (links inside it, so they count towards its link density).
        var box = parent.Owner!.CreateElement(parent.TagName is "LI" or "TD" or "TH" or "DT" or "DD" or "PRE" ? parent.TagName : "DIV");
        foreach (var node in run) box.AppendChild(node.Clone(deep: true));
        EmitBlock(box, output, parent);
    }

    /// <param name="within">For a run of inline content: the element it sits in (its paragraph).</param>
    private static void EmitBlock(IElement block, Output output, IElement? within = null)
    {
        var text = block.TagName == "PRE" ? block.TextContent.Trim('\n') : Collapse(block.TextContent);
        if (text.Length == 0) return;
        // Links and inline code in one pass over the block (a query per kind was a tenth of the extraction time).
        int linkChars = 0, codeChars = 0;
        foreach (var inline in block.QuerySelectorAll("a,code,kbd,samp,tt"))
        {
            // An <a> without href is an anchor, not a link (DocBook's <a id="..."/>, which HTML parsers leave open
            // around the heading that follows it).
            if (inline.TagName == "A") linkChars += inline.HasAttribute("href") ? CollapsedLength(inline.TextContent) : 0;
            else if (!InsideCode(inline, block)) codeChars += CollapsedLength(inline.TextContent);
        }
        if ((double)linkChars / text.Length > MaxLinkDensity && !InContentRow(within ?? block)) return;
        var paragraph = within is null ? ParagraphOf(block) : ParagraphOf(within) is var p && p != within ? p : block;
        if (output.Paragraph is not null && output.Paragraph != paragraph) output.Text.Append('\n');
        output.Paragraph = paragraph;
        if (block.TagName == "LI") output.Text.Append("- ");
        output.Text.Append(text).Append('\n');
        if (IsCodeBlock(block) || codeChars >= text.Length)
            output.Code.AddRange(text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(l => block.TagName == "LI" ? "- " + l : l));
    }

    // A <pre> is code when it says so: a class of the code renderers (Sphinx/Pygments "highlight", DocBook "screen" and
    // "programlisting", Pandoc "sourceCode", ...) on it or its two nearest ancestors, or a <code> inside (Markdown).
    // A bare <pre> is preformatted prose as far as anyone can tell, as man pages rendered to HTML are.
    private static readonly string[] CodeClasses = ["highlight", "code", "programlisting", "screen", "literal", "console", "syntax", "example"];

    private static bool IsCodeBlock(IElement block)
    {
        if (block.TagName != "PRE") return false;
        if (block.QuerySelector("code") is not null) return true;
        for (IElement? e = block; e is not null && e != block.ParentElement?.ParentElement?.ParentElement; e = e.ParentElement)
        {
            var classes = e.ClassName;
            if (classes is not null && CodeClasses.Any(c => classes.Contains(c, StringComparison.OrdinalIgnoreCase))) return true;
        }
        return false;
    }

    // A table cell that is one link (a package name linked to its page, a figure linked to its source) is data when
    // its row is mostly text: link density is judged on the row, so a row of links (a navigation table) still goes.
    // Likewise a definition term that is one link (a command linked to its manual page, as AsciiDoc's and Sphinx's
    // lists of commands and glossaries have it) is judged with its definition.
    private static bool InContentRow(IElement block)
    {
        IElement[] row = block switch
        {
            { TagName: "TD" or "TH", ParentElement: { TagName: "TR" } tr } => [tr],
            { TagName: "DT", NextElementSibling: { TagName: "DD" } dd } => [block, dd],
            _ => [],
        };
        var rowChars = row.Sum(e => CollapsedLength(e.TextContent));
        var rowLinks = row.Sum(e => e.QuerySelectorAll("a[href]").Sum(a => CollapsedLength(a.TextContent)));
        return rowChars > 0 && (double)rowLinks / rowChars <= MaxLinkDensity;
    }

    // Nested code elements (<code><kbd>...</kbd></code>) count once: only the outermost within the block.
    private static bool InsideCode(IElement inline, IElement block)
    {
        for (var e = inline.ParentElement; e is not null && e != block; e = e.ParentElement)
            if (e.TagName is "CODE" or "KBD" or "SAMP" or "TT") return true;
        return false;
    }

    /// <summary>The length <see cref="Collapse"/> would return, without building the string.</summary>
    private static int CollapsedLength(string text)
    {
        int length = 0;
        var space = false;
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c))
            {
                space = length > 0;
                continue;
            }
            length += space ? 2 : 1;
            space = false;
        }
        return length;
    }

    private static string Collapse(string text)
    {
        var builder = new StringBuilder(text.Length);
        var space = false;
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c))
            {
                space = builder.Length > 0;
                continue;
            }
            if (space) builder.Append(' ');
            space = false;
            builder.Append(c);
        }
        return builder.ToString();
    }
}
