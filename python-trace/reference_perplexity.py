"""Writes tests/fixtures/perplexity.json: transformers' float32 perplexity of
tests/fixtures/perplexity.txt under Kiln's definition (tokens without BOS, consecutive windows of
`ctx` tokens each from an empty cache, the remainder dropped, every token but a window's first
scored), and under llama.cpp's (`kiln perplexity --llama-cpp`: tokens with BOS where the model
adds one, each window's first token replaced by BOS, only its second half scored), for a tiny
fixture and the default model (loaded from its GGUF):

    python reference_perplexity.py ../models/SmolLM2-135M-Instruct.Q4_1.gguf"""
import json
import math
import pathlib
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

FIXTURES = pathlib.Path(__file__).parent.parent / "tests" / "fixtures"


def perplexity(model, tok, text, ctx, llama_cpp):
    ids = tok(text, add_special_tokens=llama_cpp)["input_ids"]
    bos = tok.bos_token_id if llama_cpp and ids[:1] == [tok.bos_token_id] else None
    first = ctx // 2 + 1 if llama_cpp else 1  # the first token scored
    nlls = []
    for start in range(0, len(ids) - ctx + 1, ctx):
        window = torch.tensor([ids[start:start + ctx]])
        if bos is not None:
            window[0, 0] = bos
        with torch.no_grad():
            logits = model(window).logits[0].double()
        nlls += (-torch.log_softmax(logits[first - 1:-1], -1).gather(1, window[0, first:, None])[:, 0]).tolist()
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
        model, tok = model().eval(), tok()
        for mode in ["kiln", "llama_cpp"]:
            ppl, scored = perplexity(model, tok, text, ctx, mode == "llama_cpp")
            cases.append({"model": name, "mode": mode, "ctx": ctx, "ppl": ppl, "scored": scored})
            print(name, mode, ctx, ppl, scored)
    (FIXTURES / "perplexity.json").write_text(json.dumps({"text": "perplexity.txt", "cases": cases}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
