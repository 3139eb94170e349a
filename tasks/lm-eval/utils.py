"""lm-evaluation-harness hooks for the task files in this folder (`!function utils.<name>`).

lm-eval ships neither JSQuAD's character F1 nor a judge; these are the same definitions this project's evaluator
applies (src/Evaluator/Tasks/Scorers.cs), and tests/Evaluator.Tests runs this file to hold the two equal. lm-eval
resolves `dataset_kwargs.data_files` against the working directory: run it from this folder, e.g.
`cd tasks/lm-eval && lm_eval --model hf --model_args pretrained=DIR --include_path . --tasks jsquad`.
"""
import json
import os
import unicodedata
import urllib.request


def _units(text):
    """NFKC, stripped, whitespace dropped; characters with their combining marks as units."""
    units = []
    for ch in unicodedata.normalize("NFKC", text).strip():
        if ch.isspace():
            continue
        if units and unicodedata.combining(ch):
            units[-1] += ch
        else:
            units.append(ch)
    return units


def char_f1(prediction, reference):
    """SQuAD's token F1 with characters as tokens (a bag of characters), as JGLUE scores JSQuAD."""
    pred, ref = _units(prediction), _units(reference)
    if not pred or not ref:
        return float(len(pred) == len(ref))
    counts = {}
    for u in ref:
        counts[u] = counts.get(u, 0) + 1
    common = 0
    for u in pred:
        if counts.get(u, 0) > 0:
            counts[u] -= 1
            common += 1
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def jsquad_char_f1(references, predictions, **kwargs):
    """lm-eval metric hook: one document's score (lm-eval passes one reference and one prediction)."""
    return char_f1(predictions[0], references[0])


def process_results_judge(doc, results):
    """lm-eval process_results hook: the judge endpoint's 1-5 score of the generated answer (PIPELINE_JUDGE_URL)."""
    url = os.environ.get("PIPELINE_JUDGE_URL", "")
    if not url:
        raise RuntimeError("set PIPELINE_JUDGE_URL to the judge endpoint (docs/evaluator.md)")
    body = json.dumps({"input": doc["input"], "output": results[0], "reference": doc["output"],
                       "aspect": doc.get("eval_aspect", "")}).encode("utf-8")
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return {"judge": float(json.load(response)["score"])}


if __name__ == "__main__":
    # For the project's test: score each {"output", "reference"} line of stdin with jsquad_char_f1.
    import sys
    for line in sys.stdin:
        pair = json.loads(line)
        print(json.dumps(jsquad_char_f1([pair["reference"]], [pair["output"]])))
