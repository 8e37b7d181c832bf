"""Writes a GGUF model as a Hugging Face folder, as ../shared/models.md describes: transformers
loads and dequantises it to float32; weights via safetensors, config without its
quantization_config, tokenizer by save_pretrained (model.save_pretrained refuses GGUF models).

    python gguf_to_hf.py models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf models/qwen2.5-coder-0.5b-instruct-hf"""
import json
import pathlib
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer


def main(gguf, out):
    path, out = pathlib.Path(gguf), pathlib.Path(out)
    tmp = out.with_name(out.name + ".part")
    tmp.mkdir(parents=True, exist_ok=True)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    # the older spelling too, for readers that know only it (mlx_lm takes 10000 without it)
    if "rope_theta" in config.get("rope_parameters", {}):
        config["rope_theta"] = config["rope_parameters"]["rope_theta"]
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not (config.get("tie_word_embeddings") and k == "lm_head.weight")}
    save_file(state, str(tmp / "model.safetensors"))
    (tmp / "config.json").write_text(json.dumps(config, indent=1))
    AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name).save_pretrained(str(tmp))
    tmp.rename(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
