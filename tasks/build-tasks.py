#!/usr/bin/env python3
"""Builds the small evaluation tasks shipped in tasks/data from Debian's documentation (debian-reference-en/-ja,
GPL-2+ like the sample site; see samples/site/COPYING). Deterministic (seeded); rerun to rebuild:

    python3 tasks/build-tasks.py tasks/data
"""
import html.parser, json, os, random, re, sys, unicodedata

out = sys.argv[1] if len(sys.argv) > 1 else "tasks/data"
os.makedirs(out, exist_ok=True)
rng = random.Random(7)

class Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True); self.parts, self.skip = [], 0
    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "pre"): self.skip += 1
        if tag in ("p", "li", "td"): self.parts.append("\n")
    def handle_endtag(self, tag):
        if tag in ("script", "style", "pre"): self.skip -= 1
        if tag in ("p", "li", "td"): self.parts.append("\n")
    def handle_data(self, data):
        if not self.skip: self.parts.append(data)

def text_of(lang):
    ref = "/usr/share/debian-reference"
    parts = []
    for name in sorted(os.listdir(ref)):
        if name.endswith(f".{lang}.html"):
            p = Text(); p.feed(open(os.path.join(ref, name), encoding="utf-8").read()); parts.append("".join(p.parts))
    return unicodedata.normalize("NFKC", "\n".join(parts))

def write(name, rows):
    with open(os.path.join(out, name), "w", encoding="utf-8") as f:
        for row in rows: f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(name, len(rows))

en, ja = text_of("en"), text_of("ja")

def cloze(sentences, pattern, draws):
    """60 fill-in-the-blank questions: one match of `pattern` blanked, three other matches of the text as distractors."""
    vocabulary = sorted({w for s in sentences for w in re.findall(pattern, s)})
    rows = []
    for s in rng.sample(sentences, draws):
        candidates = re.findall(pattern, s)
        if not candidates: continue
        answer = rng.choice(candidates)
        choices = [answer] + rng.sample([w for w in vocabulary if w != answer], 3)
        rng.shuffle(choices)
        rows.append({"question": s.replace(answer, "___", 1), "choices": choices, "label": choices.index(answer)})
        if len(rows) == 60: break
    return rows

# English cloze: a word of 6-12 letters.
sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(en.split())) if 60 <= len(s) <= 200 and not re.search(r"[\u3040-\u9fff]", s)]
write("debian-cloze-en.jsonl", cloze(sentences, r"\b[a-z]{6,12}\b", 400))

# Japanese cloze: a katakana term of 3+ characters.
jsent = [s.strip() + "。" for s in re.split(r"。", " ".join(ja.split())) if 30 <= len(s.strip()) <= 120
         and len(re.findall(r"[\u3040-\u309f]", s)) >= 0.2 * len(s)]
write("debian-cloze-ja.jsonl", cloze(jsent, r"[\u30a0-\u30ffー]{3,}", 600))

# Japanese continuation (ELYZA-tasks style fields): the first half of a sentence, the rest as the reference.
rows = []
for s in rng.sample(jsent, 40):
    cut = len(s) // 2
    rows.append({"input": s[:cut], "output": s[cut:], "eval_aspect": "文の後半として自然で、元の文と同じ内容であること"})
write("debian-continuation-ja.jsonl", rows)

# Perplexity text: 40 Japanese paragraphs.
paragraphs = [p.strip() for p in ja.split("\n") if len(p.strip()) > 80 and re.search(r"[\u3040-\u309f]", p)]
with open(os.path.join(out, "debian-reference-ja-sample.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(rng.sample(paragraphs, 40)) + "\n")
print("debian-reference-ja-sample.txt")
