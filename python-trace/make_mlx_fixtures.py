"""Writes MLX-quantised tiny models under tests/fixtures/mlx/ with reference logits:
python make_mlx_fixtures.py [NAME…]

Each case is a tiny Hugging Face fixture (or a wider one for groups of 128) quantised by
`mlx_lm.convert` (bits, group size, scale type, or a mixed-precision recipe). reference.json
holds the prompt, then the logits of the prefill (every position) and of each greedy decode
step after it, computed by transformers (float32) on the folder's weights as `mx.dequantize`
gives them: mlx_lm's own models ignore sliding windows (Mistral, Phi-3, Gemma 2) and differ
slightly on Llama 3 rope, so transformers stays the reference for the architecture.
dequantized.safetensors: one weight of each (bits, group size), as `mx.dequantize` gives it."""
import json
import pathlib
import shutil
import sys
import tempfile

import mlx.core as mx
import numpy as np
import torch
from mlx_lm import convert
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

import make_fixtures
from tiny import BASE

FIXTURES = make_fixtures.OUT
OUT = FIXTURES / "mlx"

# name -> (source fixture, mlx_lm.convert options)
CASES = {
    # tied head on a quantised embedding table
    "llama_tied_gqa_4bit_g32": ("llama_tied_gqa", dict(q_bits=4, q_group_size=32)),
    # bf16 scales; down_proj (96 inputs) is no multiple of 64 and stays in floats
    "qwen2_untied_bias_8bit_g64_bf16": ("qwen2_untied_bias", dict(q_bits=8, q_group_size=64, dtype="bfloat16")),
    "mistral_sliding_window_6bit_g32_f16": ("mistral_sliding_window", dict(q_bits=6, q_group_size=32, dtype="float16")),
    "qwen3_qk_norm_2bit_g32": ("qwen3_qk_norm", dict(q_bits=2, q_group_size=32)),
    "gemma2_softcap_3bit_g32_bf16": ("gemma2_softcap", dict(q_bits=3, q_group_size=32, dtype="bfloat16")),
    "gemma3_local_global_4bit_g64": ("gemma3_local_global", dict(q_bits=4, q_group_size=64)),
    # fused qkv_proj / gate_up_proj, read as row ranges of one packed tensor
    "phi3_fused_qkv_8bit_g32": ("phi3_fused_qkv", dict(q_bits=8, q_group_size=32)),
    # per-module bits in config.json's quantization (mlx_lm's mixed 3/6-bit recipe)
    "llama_untied_llama3_rope_mixed_3_6": ("llama_untied_llama3_rope", dict(q_group_size=32, quant_predicate="mixed_3_6")),
    # groups of 128 need rows of 128: a wider tiny Llama
    "llama_wide_5bit_g128": ("llama_wide", dict(q_bits=5, q_group_size=128)),
}


def wide_llama(folder):
    """A tiny Llama whose rows are multiples of 128, written as a Hugging Face folder."""
    torch_config = LlamaConfig(**(BASE | dict(hidden_size=128, intermediate_size=256, tie_word_embeddings=False)))
    torch.manual_seed(1)
    model = LlamaForCausalLM(torch_config).eval()
    config = model.config.to_dict() | dict(bos_token_id=0, eos_token_id=2, architectures=["LlamaForCausalLM"])
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    make_fixtures.save_weights(folder, dict(model.state_dict()), shards=1)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(FIXTURES / "llama_tied_gqa" / f, folder / f)


def f32_weights(folder):
    """Every tensor of the MLX folder in float32 under its Hugging Face name, quantised modules
    dequantised by `mx.dequantize` (scales and biases widened to f32 first, which is exact);
    and the (bits, group size) of each quantised weight."""
    weights = {}
    for f in sorted(folder.glob("*.safetensors")):
        weights |= mx.load(str(f))
    quantization = json.loads((folder / "config.json").read_text())["quantization"]
    out, formats = {}, {}
    for name, w in weights.items():
        module = name.removesuffix(".weight")
        if w.dtype == mx.uint32:
            q = quantization[module] if isinstance(quantization.get(module), dict) else quantization
            scales, biases = (weights[f"{module}.{p}"].astype(mx.float32) for p in ("scales", "biases"))
            w = mx.dequantize(w, scales, biases, group_size=q["group_size"], bits=q["bits"])
            formats[name] = (q["bits"], q["group_size"])
        elif name.endswith(".scales") or name.endswith(".biases"):
            continue
        out[name] = w.astype(mx.float32)
    return out, formats


def reference(folder, source):
    """transformers' logits of the source model's architecture with the folder's weights."""
    model = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32).eval()
    weights, _ = f32_weights(folder)
    missing, unexpected = model.load_state_dict({n: torch.from_numpy(np.array(w)) for n, w in weights.items()}, strict=False)
    assert not unexpected and all(n == "lm_head.weight" for n in missing), (missing, unexpected)
    model.tie_weights()
    return make_fixtures.reference(model)


def dequantized(folder):
    """The first quantised weight of each (bits, group size) in the folder, dequantised."""
    weights, formats = f32_weights(folder)
    first = {}
    for name in sorted(formats):
        first.setdefault(formats[name], name)
    mx.save_safetensors(str(folder / "dequantized.safetensors"), {n: weights[n] for n in first.values()})


def main(names):
    OUT.mkdir(exist_ok=True)
    for name, (source, options) in CASES.items():
        if names and name not in names:
            continue
        folder = OUT / name
        shutil.rmtree(folder, ignore_errors=True)
        with tempfile.TemporaryDirectory() as tmp:
            src = FIXTURES / source
            if source == "llama_wide":
                src = pathlib.Path(tmp) / source
                src.mkdir()
                wide_llama(src)
            convert(str(src), str(folder), quantize=True, **options)
            (folder / "README.md").unlink(missing_ok=True)
            (folder / "reference.json").write_text(json.dumps(reference(folder, src)))
        dequantized(folder)
        print(f"wrote {folder}: {json.loads((folder / 'config.json').read_text())['quantization']}")


if __name__ == "__main__":
    main(sys.argv[1:])
