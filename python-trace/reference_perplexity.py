"""Writes tests/fixtures/perplexity.json: transformers' float32 perplexity of
tests/fixtures/perplexity.txt under Kiln's definition (tokens without BOS, consecutive windows of
`ctx` tokens each from an empty cache, the remainder dropped, every token but a window's first
scored), for a tiny fixture and the default model (loaded from its GGUF):

    python reference_perplexity.py ../models/SmolLM2-135M-Instruct.Q4_1.gguf"""
import json
import math
import pathlib
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

FIXTURES = pathlib.Path(__file__).parent.parent / "tests" / "fixtures"


def perplexity(model, tok, text, ctx):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    nlls = []
    for start in range(0, len(ids) - ctx + 1, ctx):
        window = torch.tensor([ids[start:start + ctx]])
        with torch.no_grad():
            logits = model(window).logits[0].double()
        nlls += (-torch.log_softmax(logits[:-1], -1).gather(1, window[0, 1:, None])[:, 0]).tolist()
    return math.exp(sum(nlls) / len(nlls)), len(nlls)


def main(gguf):
    text = (FIXTURES / "perplexity.txt").read_text()
    cases = []
    tiny = FIXTURES / "llama_tied_gqa"
    models = [("llama_tied_gqa", 32, lambda: AutoModelForCausalLM.from_pretrained(str(tiny), dtype=torch.float32), lambda: AutoTokenizer.from_pretrained(str(tiny)))]
    path = pathlib.Path(gguf)
    models.append(("smollm2", 128, lambda: AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32),
                   lambda: AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)))
    for name, ctx, model, tok in models:
        ppl, scored = perplexity(model().eval(), tok(), text, ctx)
        cases.append({"model": name, "ctx": ctx, "ppl": ppl, "scored": scored})
        print(name, ctx, ppl, scored)
    (FIXTURES / "perplexity.json").write_text(json.dumps({"text": "perplexity.txt", "cases": cases}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
