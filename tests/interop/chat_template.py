"""Renders conversations with a tokenizer_config.json's chat_template in Jinja2, the way transformers'
apply_chat_template does (sandboxed environment, trim_blocks and lstrip_blocks, raise_exception available).

Usage: python3 chat_template.py TOKENIZER_CONFIG CONVERSATIONS_JSON OUT_JSON"""
import json
import sys

from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise ValueError(message)


def main():
    config_path, conversations_path, out_path = sys.argv[1:4]
    with open(config_path) as f:
        template = json.load(f)["chat_template"]
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.globals["raise_exception"] = raise_exception
    compiled = environment.from_string(template)
    with open(conversations_path) as f:
        conversations = json.load(f)
    rendered = [compiled.render(messages=c["messages"], add_generation_prompt=c["add_generation_prompt"]) for c in conversations]
    with open(out_path, "w") as f:
        json.dump(rendered, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
