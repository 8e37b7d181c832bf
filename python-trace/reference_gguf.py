"""Writes a real model's reference: transformers' float32 greedy continuations of fixed prompts
and of a chat prompt (rendered by the file's chat template) (the model loaded from the same
GGUF), with each step's top-two logit margin, and transformers' token ids for a varied text.

    python reference_gguf.py models/SmolLM2-135M-Instruct.Q4_1.gguf ../tests/fixtures/smollm2_reference.json"""
import json
import pathlib
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "The three primary colors are",
]
CHAT = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
STEPS = 24
TOKENIZER_TEXT = (
    "Hello, world! Ünïcödé façade — 日本語のテキスト, emoji 🦀🔥 and Ελληνικά.\n"
    "def f(x):\n    return x**2  # tabs\tand   spaces\n\n\n"
    "Numbers: 1234567 3.14159 1,000,000 0x1F; URLs https://example.com/a?b=c&d=e\n"
    "<|im_start|>user\nspecial tokens stay whole<|im_end|>\n  trailing   "
)


def main(gguf, out):
    path = pathlib.Path(gguf)
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    cases = []
    chat = tok.apply_chat_template(CHAT, add_generation_prompt=True, tokenize=False)
    for prompt in PROMPTS + [chat]:
        ids = tok(prompt, add_special_tokens=prompt != chat)["input_ids"]
        seq, tokens, margins = list(ids), [], []
        with torch.no_grad():
            for _ in range(STEPS):
                logits = model(torch.tensor([seq])).logits[0, -1]
                top = torch.topk(logits, 2)
                tokens.append(int(top.indices[0]))
                margins.append(float(top.values[0] - top.values[1]))
                seq.append(tokens[-1])
        cases.append({"prompt": prompt, "prompt_ids": ids, "tokens": tokens, "margins": margins,
                      "text": tok.decode(tokens)})
        print(repr(prompt), "->", repr(tok.decode(tokens)))
    ids = tok(TOKENIZER_TEXT)["input_ids"]
    pathlib.Path(out).write_text(json.dumps({"cases": cases, "tokenizer": {"text": TOKENIZER_TEXT, "ids": ids}}, ensure_ascii=False, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
