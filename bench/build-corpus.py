#!/usr/bin/env python3
"""Builds the benchmark text corpus from Debian's documentation packages (no network needed).

Sources: debian-reference-en/-ja (HTML), debian-policy-ja (HTML), manpages-ja (troff). Each paragraph becomes one
line; exact duplicate lines are dropped (the Japanese reference leaves some paragraphs untranslated). Every 50th
document goes to the held-out file used for compression figures.

    python3 bench/build-corpus.py bench/data        # writes corpus.txt and heldout.txt
"""
import gzip, html, html.parser, os, re, sys, unicodedata

out = sys.argv[1] if len(sys.argv) > 1 else "bench/data"
os.makedirs(out, exist_ok=True)

class Text(html.parser.HTMLParser):
    BLOCK = {"p", "li", "dd", "dt", "pre", "td", "th", "h1", "h2", "h3", "h4", "title", "div", "br", "tr"}
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.skip = [], 0
    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"): self.skip += 1
        if tag in self.BLOCK: self.parts.append("\n")
    def handle_endtag(self, tag):
        if tag in ("script", "style"): self.skip -= 1
        if tag in self.BLOCK: self.parts.append("\n")
    def handle_data(self, data):
        if not self.skip: self.parts.append(data)

def html_docs(paths):
    for path in paths:
        parser = Text()
        parser.feed(open(path, encoding="utf-8", errors="replace").read())
        yield "".join(parser.parts)

def troff_docs(root):
    for dirpath, _, files in os.walk(root):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            opener = gzip.open if name.endswith(".gz") else open
            try:
                raw = opener(path, "rt", encoding="utf-8", errors="replace").read()
            except OSError:
                continue
            lines = []
            for line in raw.splitlines():
                if line.startswith((".\\\"", "'\\\"")): continue
                if line.startswith("."):
                    parts = line.split(None, 1)
                    if len(parts) == 2 and parts[0] in (".SH", ".SS", ".B", ".I", ".BR", ".IR", ".BI", ".IB", ".RB", ".RI", ".TP", ".IP"):
                        lines.append(parts[1].replace('"', ""))
                    else:
                        lines.append("")
                    continue
                lines.append(re.sub(r"\\f[BIRP]|\\f\(..|\\&|\\-|\\\(..|\\e", lambda m: "-" if m.group(0) == "\\-" else "", line))
            yield "\n".join(lines)

def paragraphs(text):
    for block in re.split(r"\n\s*\n", text):
        para = " ".join(l.strip() for l in block.splitlines() if l.strip())
        if len(para) >= 20: yield para

ref = "/usr/share/debian-reference"
sources = [
    html_docs(sorted(os.path.join(ref, f) for f in os.listdir(ref) if f.endswith(".html"))),
    html_docs(sorted(os.path.join(d, f) for d, _, fs in os.walk("/usr/share/doc/debian-policy/ja") for f in fs if f.endswith(".html"))),
    troff_docs("/usr/share/man/ja"),
]
seen, count, chars = set(), 0, 0
with open(os.path.join(out, "corpus.txt"), "w", encoding="utf-8") as corpus, open(os.path.join(out, "heldout.txt"), "w", encoding="utf-8") as heldout:
    for source in sources:
        for doc in source:
            for para in paragraphs(doc):
                para = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", para)).strip()
                if para in seen: continue
                seen.add(para)
                count += 1
                chars += len(para)
                (heldout if count % 50 == 0 else corpus).write(para + "\n")
print(f"{count} paragraphs, {chars} characters, corpus {os.path.getsize(os.path.join(out, 'corpus.txt'))} bytes, "
      f"held-out {os.path.getsize(os.path.join(out, 'heldout.txt'))} bytes")
