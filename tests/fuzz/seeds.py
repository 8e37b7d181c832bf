"""Seed corpora for the fuzz targets, from real files: `python seeds.py OUT ARTIFACT GGUF`.

OUT/<target>/ gets: tiny GGUF files written with the `gguf` package from the tiny fixture (and
the head of the real GGUF), fixture folders (config.json | SEPARATOR | safetensors), a compiled
artifact, the traced graphs with fixture configs, the 44 chat templates with each test
conversation, and token id sequences."""
import json
import struct
import sys
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests/fixtures"
SEPARATOR = b"\n\0KILN-FUZZ\0\n"


def tiny_gguf(path: Path, quant: gguf.GGMLQuantizationType):
    """The tiny Llama fixture as a GGUF file, its matrices in `quant` where they are whole blocks."""
    folder = FIXTURES / "llama_tied_gqa"
    config = json.loads((folder / "config.json").read_text())
    tok = json.loads((folder / "tokenizer.json").read_text())
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_block_count(config["num_hidden_layers"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_head_count(config["num_attention_heads"])
    w.add_head_count_kv(config["num_key_value_heads"])
    w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    w.add_rope_freq_base(config.get("rope_theta", 10000.0))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
    w.add_token_list([t for t, _ in vocab])
    w.add_token_types([1] * len(vocab))
    merges = tok["model"]["merges"]
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    w.add_bos_token_id(0)
    w.add_eos_token_id(2)
    w.add_chat_template("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}")
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    per_layer = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
                 "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
                 "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    for name, x in load_file(folder / "model.safetensors").items():
        if name.startswith("model.layers."):
            _, _, i, rest = name.split(".", 3)
            module = rest.rsplit(".", 1)[0]
            name = f"blk.{i}.{per_layer[module]}.weight"
        else:
            name = names[name]
        x = x.astype(np.float32)
        if x.ndim == 2 and x.shape[1] % 32 == 0 and quant != gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, gguf.quants.quantize(x, quant), raw_dtype=quant)
        else:
            w.add_tensor(name, x)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main(out: Path, artifact: Path, real_gguf: Path):
    seeds = {t: out / t for t in ["gguf", "safetensors_folder", "artifact", "graph", "chat_template", "tokenizer"]}
    for d in seeds.values():
        d.mkdir(parents=True, exist_ok=True)

    for quant in [gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_0]:
        tiny_gguf(seeds["gguf"] / f"tiny_{quant.name}.gguf", quant)
    (seeds["gguf"] / "smollm2_head.gguf").write_bytes(real_gguf.read_bytes()[: 1 << 16])

    for name in ["llama_tied_gqa", "llama_untied_llama3_rope"]:
        folder = FIXTURES / name
        weights = sorted(folder.glob("*.safetensors"))[0]
        (seeds["safetensors_folder"] / name).write_bytes((folder / "config.json").read_bytes() + SEPARATOR + weights.read_bytes())
        for graph in sorted((ROOT / "graphs").glob("*.json")):
            (seeds["graph"] / f"{graph.stem}_{name}").write_bytes(graph.read_bytes() + SEPARATOR + (folder / "config.json").read_bytes())

    (seeds["artifact"] / "tiny.kiln").write_bytes(artifact.read_bytes())

    expected = json.loads((FIXTURES / "chat-templates/expected.json").read_text())
    for template in sorted((FIXTURES / "chat-templates/templates").glob("*.jinja")):
        for case, conv in expected["cases"].items():
            variables = dict(conv, add_generation_prompt=True, **expected["special_tokens"])
            (seeds["chat_template"] / f"{template.stem}_{case}").write_bytes(template.read_bytes() + SEPARATOR + json.dumps(variables).encode())

    for i, ids in enumerate([list(range(40)), [5, 200, 17, 0, 1, 2, 90] * 5, list(range(250, 270))]):
        (seeds["tokenizer"] / f"ids_{i}").write_bytes(b"".join(struct.pack("<I", t) for t in ids))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
