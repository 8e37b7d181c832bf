"""Writes tiny fixtures as GGUF files the way llama.cpp's converter does (metadata keys under the
GGUF architecture, llama.cpp tensor names, Llama's Q/K rows permuted for its rope), so the Rust
tests can check that a GGUF gives the logits transformers gives for the same weights:

    python make_gguf_fixtures.py     # tests/fixtures/gguf/<fixture>.gguf

Also used by tests/fuzz/seeds.py for the GGUF fuzz target's seeds (quantised too)."""
import json
import pathlib

import gguf
import numpy as np
from safetensors.numpy import load_file

import tiny

FIXTURES = pathlib.Path(__file__).parent.parent / "tests" / "fixtures"
# fixtures whose family has a GGUF architecture (the Llama-3 rope one would need rope-scaling metadata)
NAMES = ["llama_tied_gqa", "qwen2_untied_bias", "qwen3_qk_norm"]

GLOBAL = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
PER_LAYER = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}


def gguf_name(hf):
    stem, suffix = hf.rsplit(".", 1)
    if stem in GLOBAL:
        return f"{GLOBAL[stem]}.{suffix}"
    _, _, layer, module = stem.split(".", 3)
    return f"blk.{layer}.{PER_LAYER[module]}.{suffix}"


def permute(x, heads):
    """llama.cpp's rope layout: each head's rows (halves) interleaved in pairs."""
    return x.reshape(heads, 2, x.shape[0] // heads // 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)


def write(name, path, quant=gguf.GGMLQuantizationType.F32):
    """Fixture `name` as a GGUF file at `path`, matrices in `quant` where rows are whole blocks."""
    folder = FIXTURES / name
    config = json.loads((folder / "config.json").read_text())
    tok = json.loads((folder / "tokenizer.json").read_text())
    spec = tiny.FAMILIES[tiny.CONFIGS[name][0]][2].SPEC
    arch, permuted = spec["gguf"]["architecture"], spec["gguf"].get("permuted_qk", False)
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
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    w.add_rope_freq_base(rope.get("rope_theta", config.get("rope_theta") or 10000.0))
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
    for hf, x in sorted(weights.items()):
        x = x.astype(np.float32)
        if permuted and ".q_proj." in hf:
            x = permute(x, heads)
        elif permuted and ".k_proj." in hf:
            x = permute(x, kv_heads)
        if x.ndim == 2 and x.shape[1] % 32 == 0 and quant != gguf.GGMLQuantizationType.F32:
            w.add_tensor(gguf_name(hf), gguf.quants.quantize(x, quant), raw_dtype=quant)
        else:
            w.add_tensor(gguf_name(hf), x)
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
