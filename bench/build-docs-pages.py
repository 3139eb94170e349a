#!/usr/bin/env python3
"""Builds the real-documentation page set for `bench extract` and `bench recipes` from Debian packages:
python3-doc (Sphinx HTML), debian-reference-en/-ja (DocBook HTML), debian-handbook's en-US and ja-JP (Publican HTML:
prose in <div class="para">) and manpages-ja (troff, rendered by man(1) into a <pre> page, as man2html-style sites
serve them). Usage: bench/build-docs-pages.py OUT [MAN_PAGES]

Each page goes to OUT/<generator>/..., and OUT/main-content.tsv names, per generator, the CSS selector of the element
that holds the page's main text (the reference the extraction benchmark compares against)."""
import gzip, html, os, shutil, subprocess, sys

out = sys.argv[1]
man_pages = int(sys.argv[2]) if len(sys.argv) > 2 else 150
shutil.rmtree(out, ignore_errors=True)

sphinx = "/usr/share/doc/python3-doc/html"
count = {"sphinx": 0, "docbook": 0, "publican": 0, "man": 0}
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

with open(os.path.join(out, "main-content.tsv"), "w") as f:
    f.write("sphinx\tdiv[role=main]\n")
    f.write("docbook\tdiv.chapter,div.appendix,div.preface\n")
    f.write("publican\tbody > div.section,body > div.chapter,body > div.appendix,body > div.preface\n")
    f.write("man\tpre\n")
print(f"{out}: " + ", ".join(f"{k} {v}" for k, v in count.items()) + " pages")
