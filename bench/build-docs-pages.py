#!/usr/bin/env python3
"""Builds the real-documentation page set for `bench extract` and `bench recipes` from Debian packages, twelve
generators: python3-doc (Sphinx HTML) and developers-reference-ja (Sphinx, Japanese), debian-reference-en/-ja and
maint-guide-ja (DocBook XSL), debian-handbook's en-US and ja-JP (Publican HTML: prose in <div class="para">),
manpages-ja (troff, rendered by man(1) into a <pre> page, as man2html-style sites serve them), git-doc (AsciiDoc),
libglib2.0-doc (gtk-doc), libjsoup-java-doc (javadoc), doxygen-doc (Doxygen), mkdocs-doc (MkDocs), gettext-doc
(texi2html, and groff -Thtml manual pages). Usage: bench/build-docs-pages.py OUT [MAN_PAGES]

Each page goes to OUT/<generator>/... (OUT/<generator>/ja-JP/... for a Japanese set of a generator that has both),
and OUT/main-content.tsv names, per generator, the CSS selector of the element that holds the page's main text (the
reference the extraction benchmark compares against) and, in a third column, elements inside it that are not main
text (navigation bars that the generator puts in the same element)."""
import gzip, html, os, shutil, subprocess, sys

out = sys.argv[1]
man_pages = int(sys.argv[2]) if len(sys.argv) > 2 else 150
shutil.rmtree(out, ignore_errors=True)

sphinx = "/usr/share/doc/python3-doc/html"
count = {"sphinx": 0, "docbook": 0, "publican": 0, "man": 0}


def copy_pages(generator, folder, keep=lambda name: True, target_folder=None, recursive=False):
    """Copies the .html files of folder (and its subfolders when recursive) that keep() accepts."""
    if not os.path.isdir(folder):
        return
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(dirs) if recursive else []
        for name in sorted(files):
            path = os.path.join(current, name)
            if not name.endswith(".html") or not keep(os.path.relpath(path, folder)):
                continue
            target = os.path.join(out, target_folder or generator, os.path.relpath(path, folder))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(path, target)
            count[generator] = count.get(generator, 0) + 1
for folder, _, files in os.walk(sphinx, followlinks=True):
    if "/_" in folder:
        continue
    for name in sorted(files):
        # Index, search and table-of-contents pages are link lists by design: no main text to extract.
        if not name.endswith(".html") or name in ("genindex.html", "search.html", "py-modindex.html", "contents.html") or name.startswith("genindex-"):
            continue
        target = os.path.join(out, "sphinx", os.path.relpath(os.path.join(folder, name), sphinx))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(os.path.join(folder, name), target)
        count["sphinx"] += 1

reference = "/usr/share/debian-reference"
for name in sorted(os.listdir(reference)):
    if name.endswith(".html") and not name.startswith("index"):
        os.makedirs(os.path.join(out, "docbook"), exist_ok=True)
        shutil.copyfile(os.path.join(reference, name), os.path.join(out, "docbook", name))
        count["docbook"] += 1

handbook = "/usr/share/doc/debian-handbook/html"
for language in ("en-US", "ja-JP"):
    folder = os.path.join(handbook, language)
    if not os.path.isdir(folder):
        continue
    for name in sorted(os.listdir(folder)):
        # index.html is the book's table of contents: links only.
        if name.endswith(".html") and name != "index.html":
            os.makedirs(os.path.join(out, "publican", language), exist_ok=True)
            shutil.copyfile(os.path.join(folder, name), os.path.join(out, "publican", language, name))
            count["publican"] += 1

man = "/usr/share/man/ja/man1"
env = dict(os.environ, MANWIDTH="80", LANG="C.UTF-8")
for name in sorted(os.listdir(man))[:man_pages]:
    text = subprocess.run(["man", "-l", os.path.join(man, name)], env=env, capture_output=True).stdout
    text = subprocess.run(["col", "-bx"], input=text, capture_output=True).stdout.decode("utf-8", "replace")
    if len(text.strip()) == 0:
        continue
    title = name.split(".")[0]
    page = (f"<!DOCTYPE html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}(1) マニュアルページ</title></head>"
            f"<body><div class=\"nav\"><a href=\"../index.html\">索引</a> | <a href=\"index.html\">セクション 1</a></div>"
            f"<h1>{html.escape(title)}</h1><pre>{html.escape(text)}</pre>"
            f"<div class=\"footer\">この HTML は man(1) の出力から作成されました。</div></body></html>")
    os.makedirs(os.path.join(out, "man"), exist_ok=True)
    with open(os.path.join(out, "man", title + ".html"), "w", encoding="utf-8") as f:
        f.write(page)
    count["man"] += 1

# Sphinx and DocBook in Japanese: the Developer's Reference and the New Maintainers' Guide. The single-page and
# index/search pages are left out (a whole book in one page; link lists).
copy_pages("sphinx", "/usr/share/developers-reference/ja", lambda n: n not in ("index.html", "search.html", "genindex.html", "developers-reference.html"), "sphinx/ja-JP")
copy_pages("docbook", "/usr/share/doc/maint-guide-ja/html", lambda n: not n.startswith("index"), "docbook/ja-JP")
# AsciiDoc: git's manual pages and guides.
def generated_by(root, generator):
    def keep(name):
        with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
            return generator in f.read(3000)
    return keep
copy_pages("asciidoc", "/usr/share/doc/git-doc", generated_by("/usr/share/doc/git-doc", 'content="AsciiDoc'))
# gtk-doc: GLib's reference entries and sections (its book, part, chapter and index pages are link lists).
def gtk_doc_page(name, root="/usr/share/gtk-doc/html"):
    with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
        head = f.read(4000)
    return 'class="refentry"' in head or '<div class="section">' in head
copy_pages("gtk-doc", "/usr/share/gtk-doc/html/glib", lambda n: gtk_doc_page(os.path.join("glib", n)))
copy_pages("gtk-doc", "/usr/share/gtk-doc/html/gobject", lambda n: gtk_doc_page(os.path.join("gobject", n)), "gtk-doc/gobject")
# javadoc: jsoup's class pages (package summaries, trees and indexes are link lists).
copy_pages("javadoc", "/usr/share/doc/libjsoup-java/api/org", lambda n: not os.path.basename(n).startswith("package-") and not "class-use" in n, "javadoc/org", recursive=True)
# Doxygen: its own manual, generated by itself.
copy_pages("doxygen", "/usr/share/doc/doxygen/html", lambda n: n not in ("index.html",))
# MkDocs: its own documentation, built with its own theme.
copy_pages("mkdocs", "/usr/share/doc/mkdocs/html", lambda n: n not in ("404.html", "search.html"), recursive=True)
# texi2html: the gettext manual, a page per chapter; groff -Thtml: gettext's manual pages.
# Its index pages (the title ends in "Index") are link lists.
def texinfo_page(name, root="/usr/share/doc/gettext"):
    with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
        head = f.read(3000)
    title = head[head.find("<title>"):head.find("</title>")]
    return name.startswith("gettext_") and name not in ("gettext_toc.html", "gettext_abt.html", "gettext_ovr.html", "gettext_fot.html") and "Index" not in title
copy_pages("texinfo", "/usr/share/doc/gettext", texinfo_page)
copy_pages("groff", "/usr/share/doc/gettext", lambda n: n.endswith((".1.html", ".3.html")))

with open(os.path.join(out, "main-content.tsv"), "w") as f:
    f.write("sphinx\tdiv[role=main]\n")
    # A chapter's table of contents (div.toc, div.list-of-*) is navigation, as Sphinx's toctree pages are.
    toc = "div.toc,div.list-of-tables,div.list-of-figures,div.list-of-examples"
    f.write(f"docbook\tdiv.chapter,div.appendix,div.preface\t{toc}\n")
    f.write(f"publican\tbody > div.section,body > div.chapter,body > div.appendix,body > div.preface\t{toc}\n")
    f.write("man\tpre\n")
    f.write("asciidoc\tdiv#content\n")
    # A reference entry's summary tables (every name a link to its description further down) are its table of contents.
    f.write("gtk-doc\tbody > div.refentry,body > div.section\tdiv.informaltable:has(col.functions_proto_name),div.informaltable:has(col.other_proto_name)\n")
    # The lists of members inherited from other classes are links to those classes' pages.
    f.write("javadoc\tmain\tli:has(> a[id*='.inherited.from.'])\n")
    f.write("doxygen\tdiv.header,div.contents\n")
    f.write("mkdocs\tdiv[role=main]\n")
    f.write("texinfo\tbody\tbody > table[cellpadding='1'],body > p:last-of-type > font[size='-1'],body > p:last-of-type\n")
    f.write("groff\tbody\tbody > a[href^='#'],body > hr\n")
print(f"{out}: " + ", ".join(f"{k} {v}" for k, v in count.items()) + " pages")
