"""Merges a PEFT LoRA adapter (adapter_config.json, adapter_model.safetensors) into a Hugging Face base model by
PEFT's definition, W + (lora_alpha / r) * B @ A for every target module, and compares the result with another
Hugging Face model folder (the project's own merge, exported).

Usage: python3 peft_merge.py BASE_DIR ADAPTER_DIR MERGED_DIR OUT_JSON
BASE_DIR "-" finds the base as PEFT's AutoPeftModelForCausalLM does: the adapter's base_model_name_or_path, passed to
transformers' from_pretrained, which takes it as a local folder relative to the working directory when one exists
there (else as a hub id, which this stand-in cannot fetch)."""
import json
import os
import sys

from llama_forward import read_safetensors


def main():
    base_dir, adapter_dir, merged_dir, out_path = sys.argv[1:5]
    with open(f"{adapter_dir}/adapter_config.json") as f:
        config = json.load(f)
    assert config["peft_type"] == "LORA" and not config["use_rslora"]
    if base_dir == "-":
        base_dir = config["base_model_name_or_path"]
        if not os.path.isdir(base_dir):
            sys.exit(f"base_model_name_or_path '{base_dir}' is not a folder under the working directory {os.getcwd()}")
    scale = config["lora_alpha"] / config["r"]
    base = read_safetensors(f"{base_dir}/model.safetensors")
    adapter = read_safetensors(f"{adapter_dir}/adapter_model.safetensors")
    merged = read_safetensors(f"{merged_dir}/model.safetensors")
    adapted = 0
    worst = 0.0
    for name, weight in base.items():
        module = name[: -len(".weight")]
        a = adapter.get(f"base_model.model.{module}.lora_A.weight")
        if a is not None:
            assert module.split(".")[-1] in config["target_modules"], module
            weight = weight + scale * adapter[f"base_model.model.{module}.lora_B.weight"] @ a
            adapted += 1
        worst = max(worst, float(abs(weight - merged[name]).max()))
    json.dump({"adapted": adapted, "max_abs_diff": worst, "tensors": len(base)}, open(out_path, "w"))


if __name__ == "__main__":
    main()
