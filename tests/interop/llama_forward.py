"""An independent Llama forward pass in numpy, from the published architecture (Touvron et al. 2023; Hugging Face's
modeling_llama), reading a model folder by Hugging Face names only: config.json and model.safetensors.

Usage: python3 llama_forward.py MODEL_DIR IDS_JSON OUT_JSON
IDS_JSON holds a list of token id lists; OUT_JSON gets, for each, the logits of every position (float64)."""
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    # The format: an 8-byte little-endian header length, a JSON header, then the raw tensor bytes.
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    dtypes = {"F32": np.float32, "F16": np.float16}
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype=dtypes[entry["dtype"]]).reshape(entry["shape"]).astype(np.float64)
    return tensors


def rms_norm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def hidden_states(config, w, ids):
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)
    head_dim = config.get("head_dim", hidden // heads)
    eps = config["rms_norm_eps"]
    theta = config.get("rope_theta", 10000.0)
    t = len(ids)
    x = w["model.embed_tokens.weight"][ids]
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2) / head_dim)
    freqs = np.outer(np.arange(t), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    cos, sin = np.cos(emb), np.sin(emb)
    mask = np.triu(np.full((t, t), -np.inf), k=1)
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(t, heads, head_dim).transpose(1, 0, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(t, kv_heads, head_dim).transpose(1, 0, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(t, kv_heads, head_dim).transpose(1, 0, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = np.repeat(k, heads // kv_heads, axis=0)
        v = np.repeat(v, heads // kv_heads, axis=0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(head_dim) + mask
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        attention = scores / scores.sum(axis=-1, keepdims=True)
        y = (attention @ v).transpose(1, 0, 2).reshape(t, heads * head_dim)
        x = x + y @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + ((gate / (1 + np.exp(-gate))) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    return rms_norm(x, w["model.norm.weight"], eps)


def forward(config, w, ids):
    head = w["model.embed_tokens.weight"] if config.get("tie_word_embeddings", False) else w["lm_head.weight"]
    return hidden_states(config, w, ids) @ head.T


def reward(config, w, ids):
    # LlamaForSequenceClassification: score (num_labels x hidden) on the last token that is not pad_token_id, found
    # as transformers finds it (the rightmost non-pad position).
    assert config["num_labels"] == 1 if "num_labels" in config else len(config["id2label"]) == 1
    pad = config["pad_token_id"]
    last = max(i for i, token in enumerate(ids) if token != pad)
    return float((hidden_states(config, w, ids) @ w["score.weight"].T)[last, 0])


def main():
    model_dir, ids_path, out_path = sys.argv[1:4]
    with open(f"{model_dir}/config.json") as f:
        config = json.load(f)
    assert config["model_type"] == "llama" and config["architectures"] in (["LlamaForCausalLM"], ["LlamaForSequenceClassification"])
    weights = read_safetensors(f"{model_dir}/model.safetensors")
    with open(ids_path) as f:
        sequences = json.load(f)
    with open(out_path, "w") as f:
        if config["architectures"] == ["LlamaForSequenceClassification"]:
            assert "lm_head.weight" not in weights
            json.dump([reward(config, weights, ids) for ids in sequences], f)
        else:
            json.dump([forward(config, weights, ids).tolist() for ids in sequences], f)


if __name__ == "__main__":
    main()
