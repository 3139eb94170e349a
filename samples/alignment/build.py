#!/usr/bin/env python3
"""Builds the tiny alignment sets from the shipped continuation task (Debian Reference sentences, GPL-2+):
sft-ja.jsonl (instruction/output), dpo-ja.jsonl (prompt/chosen/rejected: the true continuation is chosen, the
continuation of another sentence rejected) and rl-ja.jsonl (prompt/answer: GRPO's and PPO's prompts, the true
continuation the answer a verifier compares with). Deterministic:  python3 samples/alignment/build.py
"""
import json, os, random
here = os.path.dirname(os.path.abspath(__file__))
rows = [json.loads(l) for l in open(os.path.join(here, "../../tasks/data/debian-continuation-ja.jsonl"), encoding="utf-8")]
rng = random.Random(11)
with open(os.path.join(here, "sft-ja.jsonl"), "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps({"instruction": "次の文の続きを書いてください。", "input": r["input"], "output": r["output"]}, ensure_ascii=False) + "\n")
with open(os.path.join(here, "dpo-ja.jsonl"), "w", encoding="utf-8") as f:
    for i, r in enumerate(rows):
        other = rows[(i + 1 + rng.randrange(len(rows) - 1)) % len(rows)]
        f.write(json.dumps({"prompt": "次の文の続きを書いてください。\n\n" + r["input"], "chosen": r["output"], "rejected": other["output"]}, ensure_ascii=False) + "\n")
with open(os.path.join(here, "rl-ja.jsonl"), "w", encoding="utf-8") as f:
    for r in rows:
        f.write(json.dumps({"prompt": "次の文の続きを書いてください。\n\n" + r["input"], "answer": r["output"]}, ensure_ascii=False) + "\n")
print(len(rows), "examples")
