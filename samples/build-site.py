#!/usr/bin/env python3
"""Builds samples/site: a small real web site from Debian Reference (en + ja), for `pipeline run` and the tests.

Source: Debian's debian-reference-en / debian-reference-ja packages (/usr/share/debian-reference), GPL-2+ (see
samples/site/COPYING). Each section (h3 level) of each chapter becomes one page wrapped in a site template with
navigation, a header, a footer and a cookie notice (boilerplate for the cleaner to remove). The site also has:
  - robots.txt (disallows /private/, names the sitemap), sitemap.xml (index) -> sitemap-en.xml, sitemap-ja.xml;
  - /print/ copies of some pages (exact duplicates up to the template) and /mirror/ copies with small edits
    (near-duplicates), so that the exact and fuzzy dedup stages have real work;
  - a few Japanese pages re-encoded in Shift_JIS and EUC-JP (charset detection);
  - a /private/ page that a polite crawler must not fetch.
Usage: python3 samples/build-site.py [--per-chapter N] [--out samples/site]
"""
import argparse
import html
import os
import re
import shutil

SRC = "/usr/share/debian-reference"
CHAPTERS = ["pr01"] + [f"ch{i:02d}" for i in range(1, 13)]

TEMPLATE = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="{charset}">
<title>{title}</title>
<link rel="canonical" href="{canonical}">
</head>
<body>
<header><a href="/">Debian Reference sample</a> | <a href="/{other_lang}/{other_name}">{other_label}</a></header>
<nav><ul><li><a href="/{lang}/index.html">{toc}</a></li>{nav}</ul></nav>
<main>
{body}
</main>
<aside><p>Share: Twitter | Facebook | Read more</p></aside>
<div class="cookie">This site uses cookies. By continuing you accept our cookie policy.</div>
<footer><p>Copyright 2007-2023 Osamu Aoki. GPL-2+.</p><a href="/{lang}/{prev}">prev</a> <a href="/{lang}/{next}">next</a></footer>
</body>
</html>
"""


def sections(text):
    parts = re.split(r'(?=<div class="section">\s*<div class="titlepage">\s*<div>\s*<div>\s*<h3)', text)
    for part in parts[1:]:
        title = re.search(r"<h3[^>]*>(.*?)</h3>", part, re.S)
        title = re.sub(r"<[^>]+>", "", title.group(1)).strip() if title else "section"
        # Drop nested lower-level navigation anchors pointing into the original chapter files.
        body = re.sub(r'href="(ch\d\d|pr01|apa|index)\.(en|ja)\.html#[^"]*"', 'href="#"', part)
        body = re.sub(r'<img [^>]*>', "", body)
        yield html.unescape(title), body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-chapter", type=int, default=12)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "site"))
    args = ap.parse_args()
    out = args.out
    if os.path.exists(out):
        shutil.rmtree(out)
    pages = {"en": [], "ja": []}
    for lang in ("en", "ja"):
        for ch in CHAPTERS:
            path = os.path.join(SRC, f"{ch}.{lang}.html")
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for i, (title, body) in enumerate(sections(text)):
                if i >= args.per_chapter:
                    break
                pages[lang].append((f"{ch}-{i + 1:02d}.html", title, body))
    # Pair pages across languages by position so each links to its translation.
    for lang in ("en", "ja"):
        other = "ja" if lang == "en" else "en"
        os.makedirs(os.path.join(out, lang), exist_ok=True)
        names = [p[0] for p in pages[lang]]
        other_names = {p[0] for p in pages[other]}
        for idx, (name, title, body) in enumerate(pages[lang]):
            nav = "".join(f'<li><a href="/{lang}/{n}">{n}</a></li>' for n in names[max(0, idx - 3): idx + 4])
            page = TEMPLATE.format(
                lang=lang, charset="utf-8", title=html.escape(title), canonical=f"/{lang}/{name}", other_lang=other,
                other_name=name if name in other_names else "index.html", other_label="日本語" if lang == "en" else "English",
                toc="Contents" if lang == "en" else "目次", nav=nav, body=body,
                prev=names[idx - 1], next=names[(idx + 1) % len(names)])
            with open(os.path.join(out, lang, name), "w", encoding="utf-8") as f:
                f.write(page)
        index = "".join(f'<li><a href="{n}">{html.escape(t)}</a></li>' for n, t, _ in pages[lang])
        with open(os.path.join(out, lang, "index.html"), "w", encoding="utf-8") as f:
            f.write(f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>Debian Reference ({lang})</title></head>'
                    f'<body><nav><ul>{index}</ul></nav><a href="/private/secret.html">private</a></body></html>\n')
    # Exact duplicates (/print/) and near-duplicates (/mirror/, one paragraph dropped and a line added).
    for lang in ("en", "ja"):
        for sub in ("print", "mirror"):
            os.makedirs(os.path.join(out, sub, lang), exist_ok=True)
        for name, title, body in pages[lang][:: 9]:
            src = os.path.join(out, lang, name)
            with open(src, encoding="utf-8") as f:
                page = f.read()
            with open(os.path.join(out, "print", lang, name), "w", encoding="utf-8") as f:
                f.write(page.replace("<header>", "<header>[print] "))
            paragraphs = re.findall(r"<p>.*?</p>", page, re.S)
            edited = page.replace(paragraphs[-1], "", 1) if len(paragraphs) > 6 else page
            edited = edited.replace("<main>", "<main><p>Mirrored copy of the Debian Reference.</p>", 1)
            with open(os.path.join(out, "mirror", lang, name), "w", encoding="utf-8") as f:
                f.write(edited)
    # Legacy encodings: the same Japanese pages served as Shift_JIS and EUC-JP.
    os.makedirs(os.path.join(out, "legacy"), exist_ok=True)
    legacy = []
    for enc, label in (("shift_jis", "Shift_JIS"), ("euc_jp", "EUC-JP")):
        for name, title, body in pages["ja"][1:3]:
            with open(os.path.join(out, "ja", name), encoding="utf-8") as f:
                page = f.read().replace('<meta charset="utf-8">', f'<meta charset="{label}">')
            legacy_name = f"{enc}-{name}"
            with open(os.path.join(out, "legacy", legacy_name), "wb") as f:
                f.write(page.encode(enc, errors="xmlcharrefreplace"))
            legacy.append(f"/legacy/{legacy_name}")
    os.makedirs(os.path.join(out, "private"), exist_ok=True)
    with open(os.path.join(out, "private", "secret.html"), "w", encoding="utf-8") as f:
        f.write("<html><body><p>robots.txt disallows this page.</p></body></html>\n")
    with open(os.path.join(out, "index.html"), "w", encoding="utf-8") as f:
        f.write('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Debian Reference sample</title></head><body>'
                '<a href="/en/index.html">English</a> <a href="/ja/index.html">日本語</a>'
                + "".join(f' <a href="{u}">{u}</a>' for u in legacy) + "</body></html>\n")
    with open(os.path.join(out, "robots.txt"), "w") as f:
        f.write("User-agent: *\nDisallow: /private/\nAllow: /\n\nSitemap: /sitemap.xml\n")
    urls = {lang: [f"/{lang}/{n}" for n, _, _ in pages[lang]] for lang in ("en", "ja")}
    urls["ja"] += [f"/{sub}/{lang}/{n}" for sub in ("print", "mirror") for lang in ("en", "ja") for n, _, _ in pages[lang][::9]]
    for lang, items in urls.items():
        with open(os.path.join(out, f"sitemap-{lang}.xml"), "w") as f:
            f.write('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n')
            f.writelines(f"  <url><loc>{u}</loc></url>\n" for u in items)
            f.write("</urlset>\n")
    with open(os.path.join(out, "sitemap.xml"), "w") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
                '  <sitemap><loc>/sitemap-en.xml</loc></sitemap>\n  <sitemap><loc>/sitemap-ja.xml</loc></sitemap>\n</sitemapindex>\n')
    shutil.copy(os.path.join(os.path.dirname(SRC), "doc", "debian-reference-en", "copyright"), os.path.join(out, "COPYING"))
    total = sum(len(v) for v in pages.values())
    print(f"wrote {total} pages (+ duplicates and legacy encodings) to {out}")


if __name__ == "__main__":
    main()
