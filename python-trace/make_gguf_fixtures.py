"""Writes tiny fixtures as GGUF files the way llama.cpp's converter does (metadata keys under the
GGUF architecture, llama.cpp tensor names, Llama's Q/K rows permuted for its rope, Gemma's norm
gains stored as 1 + w, rope factors as tensors), following each family's SPEC["gguf"], so the
Rust tests can check that a GGUF gives the logits transformers gives for the same weights:

    python make_gguf_fixtures.py     # tests/fixtures/gguf/<fixture>.gguf

Also used by tests/fuzz/seeds.py for the GGUF fuzz target's seeds (quantised too)."""
import json
import pathlib

import gguf
import numpy as np
from safetensors.numpy import load_file

import tiny
from ops import config_value, rope_inv_freq

FIXTURES = pathlib.Path(__file__).parent.parent / "tests" / "fixtures"
# fixtures whose settings GGUF can say (not Mistral's window under `llama`)
NAMES = ["llama_tied_gqa", "llama_untied_llama3_rope", "qwen2_untied_bias", "qwen3_qk_norm", "granite_multipliers",
         "phi3_fused_qkv", "phi3_longrope_partial", "gemma2_softcap", "gemma3_local_global"]

GLOBAL = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
PER_LAYER = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}


def gguf_name(hf, spec):
    stem, suffix = hf.rsplit(".", 1)
    if stem in GLOBAL:
        return f"{GLOBAL[stem]}.{suffix}"
    _, _, layer, module = stem.split(".", 3)
    own = {h: g for g, h in spec.get("tensors", {}).items()}
    return f"blk.{layer}.{own.get(module) or PER_LAYER[module]}.{suffix}"


def gguf_view(config, arch_spec):
    """The config as llama.cpp sees it: one rope scaling (the global layers'), layer kinds as flags."""
    rope = config.get("rope_parameters") or {}
    view = dict(config, rope_scaling=rope.get("full_attention", rope))
    if "layer_types" in config and arch_spec.get("layer_kinds"):
        view["sliding_window_pattern"] = [k == arch_spec["layer_kinds"]["kinds"][0] for k in config["layer_types"]]
    return view


def add_value(w, key, value):
    if isinstance(value, bool) or isinstance(value, list):
        w.add_key_value(key, value, gguf.GGUFValueType.BOOL if isinstance(value, bool) else gguf.GGUFValueType.ARRAY,
                        gguf.GGUFValueType.BOOL if isinstance(value, list) else None)
    elif isinstance(value, int):
        w.add_uint32(key, value)
    elif isinstance(value, float):
        w.add_float32(key, value)
    else:
        w.add_string(key, value)


def config_tensors(config, spec, head_dim):
    """The tensors llama.cpp makes from the config: rope divisors (Llama 3), longrope factors."""
    rope, out = config.get("rope_parameters") or {}, {}
    for name, key in spec.get("tensor_config", {}).items():
        if key == "rope_scaling.freq_factors" and rope.get("rope_type") == "llama3":
            theta = rope["rope_theta"]
            out[name] = (rope_inv_freq(head_dim, theta, None) / rope_inv_freq(head_dim, theta, rope)).numpy()
        elif key.startswith("rope_scaling.") and key.split(".")[1] in rope:
            out[name] = np.array(rope[key.split(".")[1]], dtype=np.float32)
    return out


def permute(x, heads):
    """llama.cpp's rope layout: each head's rows (halves) interleaved in pairs."""
    return x.reshape(heads, 2, x.shape[0] // heads // 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)


def write(name, path, quant=gguf.GGMLQuantizationType.F32):
    """Fixture `name` as a GGUF file at `path`, matrices in `quant` where rows are whole blocks."""
    folder = FIXTURES / name
    config = json.loads((folder / "config.json").read_text())
    tok = json.loads((folder / "tokenizer.json").read_text())
    arch_spec = tiny.FAMILIES[tiny.CONFIGS[name][0]][2].SPEC
    spec = arch_spec["gguf"]
    arch, permuted = spec["architecture"], spec.get("permuted_qk", False)
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    rope = config.get("rope_parameters") or {}
    w = gguf.GGUFWriter(str(path), arch)
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_block_count(config["num_hidden_layers"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_dimension_count(int(head_dim * (rope.get("partial_rotary_factor") or 1.0)))
    w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    w.add_rope_freq_base(rope.get("full_attention", rope).get("rope_theta", config.get("rope_theta") or 10000.0))
    view = gguf_view(config, arch_spec)
    for config_key, meta_key in spec.get("config", {}).items():
        if (value := config_value(view, [config_key])) is not None and f"{arch}.{meta_key}" not in w.kv_data[0]:
            add_value(w, f"{arch}.{meta_key}", value)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
    w.add_token_list([t for t, _ in vocab])
    w.add_token_types([1] * len(vocab))
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]])
    w.add_bos_token_id(0)
    w.add_eos_token_id(2)
    w.add_chat_template(json.loads((folder / "tokenizer_config.json").read_text())["chat_template"])
    weights = {}
    for shard in sorted(folder.glob("*.safetensors")):
        weights |= load_file(shard)
    for name, x in config_tensors(config, spec, head_dim).items():
        w.add_tensor(name, x.astype(np.float32))
    for hf, x in sorted(weights.items()):
        x = x.astype(np.float32) + (1.0 if spec.get("offsets_applied") and hf.endswith("norm.weight") else 0.0)
        if permuted and ".q_proj." in hf:
            x = permute(x, heads)
        elif permuted and ".k_proj." in hf:
            x = permute(x, kv_heads)
        if x.ndim == 2 and x.shape[1] % 32 == 0 and quant != gguf.GGMLQuantizationType.F32:
            w.add_tensor(gguf_name(hf, spec), gguf.quants.quantize(x, quant), raw_dtype=quant)
        else:
            w.add_tensor(gguf_name(hf, spec), x)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    (FIXTURES / "gguf").mkdir(exist_ok=True)
    for name in NAMES:
        write(name, FIXTURES / "gguf" / f"{name}.gguf")
        print(f"wrote {FIXTURES / 'gguf' / name}.gguf")


if __name__ == "__main__":
    main()
