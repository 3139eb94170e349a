#!/usr/bin/python3
"""The extraction yardsticks on the page set of bench/build-docs-pages.py, for `bench extract OUT --others DIR`:
readability-lxml (python3-readability: the article's HTML, then its text) and html2text (python3-html2text, links
and images left out), both from Debian. Each page's text goes to DIR/<tool>/<page path>.txt; the C# benchmark scores
them with the same units and the same reference as the project's extractor. Prints each tool's CPU-seconds (this
process's user+system time around the extraction alone, files read beforehand).

Usage: /usr/bin/python3 bench/extract-others.py OUT DIR"""
import os
import sys
import time

import html2text
import lxml.html
from readability import Document


def readability_text(page):
    summary = Document(page).summary(html_partial=True)
    return lxml.html.fromstring(summary).text_content() if summary.strip() else ""


def html2text_text(page):
    converter = html2text.HTML2Text()
    converter.ignore_links = True
    converter.ignore_images = True
    converter.body_width = 0
    return converter.handle(page)


def main():
    pages_root, out = sys.argv[1], sys.argv[2]
    pages = []
    for folder, _, files in os.walk(pages_root):
        for name in sorted(files):
            if name.endswith(".html"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    pages.append((os.path.relpath(path, pages_root), f.read()))
    total = sum(len(p.encode("utf-8")) for _, p in pages)
    for tool, extract in (("readability", readability_text), ("html2text", html2text_text)):
        texts = []
        start = time.process_time()
        for _, page in pages:
            try:
                texts.append(extract(page))
            except Exception as error:  # a tool that fails on a page extracts nothing from it
                texts.append("")
                print(f"{tool}: {error}", file=sys.stderr)
        seconds = time.process_time() - start
        for (relative, _), text in zip(pages, texts):
            target = os.path.join(out, tool, relative + ".txt")
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as f:
                f.write(text)
        print(f"{tool}: {len(pages)} pages, {total / 1e6:.1f} MB of HTML in {seconds:.2f} CPU-seconds = {total / 1e6 / seconds:.2f} MB per CPU-second")


if __name__ == "__main__":
    main()
