"""Writes an MLX folder's reference: `mlx_lm.generate`'s greedy continuations of the prompts
reference_gguf.py uses (and its chat prompt), with each step's top-two logit margin.

    python reference_mlx.py models/SmolLM2-135M-Instruct-mlx-4bit ../tests/fixtures/smollm2_mlx_reference.json"""
import json
import pathlib
import sys

import mlx.core as mx
from mlx_lm import generate, load
from mlx_lm.generate import generate_step

from reference_gguf import CHAT, PROMPTS, STEPS


def main(folder, out):
    model, tok = load(folder)
    chat = tok.apply_chat_template(CHAT, add_generation_prompt=True, tokenize=False)
    cases = []
    for prompt in PROMPTS + [chat]:
        ids = tok.encode(prompt, add_special_tokens=prompt != chat)
        tokens, margins = [], []
        for token, logprobs in generate_step(mx.array(ids), model, max_tokens=STEPS):
            top = mx.sort(logprobs)[-2:]
            tokens.append(int(token))
            margins.append(float(top[1] - top[0]))
        # the text mlx_lm.generate gives (greedy by default; its detokenizer drops a leading space)
        # (it stops at an end-of-sequence token)
        stop = next((i for i, t in enumerate(tokens) if t in tok.eos_token_ids), len(tokens))
        assert tok.decode(tokens[:stop]).lstrip() == generate(model, tok, ids, max_tokens=STEPS).lstrip(), prompt
        cases.append({"prompt": prompt, "prompt_ids": ids, "tokens": tokens, "margins": margins, "text": tok.decode(tokens)})
        print(repr(prompt), "->", repr(tok.decode(tokens)))
    pathlib.Path(out).write_text(json.dumps({"cases": cases}, ensure_ascii=False, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
