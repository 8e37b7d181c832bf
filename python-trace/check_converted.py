"""Checks files `kiln convert` wrote, with the readers other engines use (run by the Rust tests):

    python check_converted.py gguf-like OUT.gguf REFERENCE.gguf   # gguf reader: same tensors, same metadata
    python check_converted.py gguf-twin OUT.gguf FIXTURE QUANT     # the same, against make_gguf_fixtures.py's QUANT file
    python check_converted.py transformers OUT.gguf SOURCE         # transformers: same weights and ids as SOURCE
    python check_converted.py tokenizer OUT.gguf SOURCE.gguf       # transformers' tokenizers: the same ids
    python check_converted.py mlx-like OUT_FOLDER REFERENCE_FOLDER # the same tensors as mlx_lm.convert wrote
    python check_converted.py mlx-convert OUT_FOLDER SOURCE BITS GROUP  # the same, mlx_lm.convert run here
    python check_converted.py mlx-generate OUT_FOLDER PROMPT N     # mlx_lm.generate's greedy text, printed

Each prints what it compared and exits non-zero on a difference."""
import pathlib
import sys

import numpy as np

TEXT = "Hello, world! Ünïcödé façade — 日本語, emoji 🦀 and code: def f(x): return x**2  # 1234567"
# keys whose values legitimately differ from a reference writer's (make_gguf_fixtures.py marks
# every token normal; llama.cpp, and Kiln, mark special added tokens as control)
OWN_KEYS = {"general.name", "tokenizer.ggml.pre", "tokenizer.ggml.token_type"}


def gguf_tensors(path):
    import gguf
    reader = gguf.GGUFReader(path)
    tensors = {t.name: gguf.quants.dequantize(t.data, t.tensor_type).reshape([int(d) for d in reversed(t.shape)]) for t in reader.tensors}
    meta = {f.name: f.contents() for f in reader.fields.values() if not f.name.startswith("GGUF.")}
    return tensors, meta


def gguf_like(out, reference):
    got, got_meta = gguf_tensors(out)
    want, want_meta = gguf_tensors(reference)
    assert got.keys() == want.keys(), sorted(set(got) ^ set(want))
    for name in want:
        assert got[name].shape == want[name].shape, (name, got[name].shape, want[name].shape)
        err = np.abs(got[name].astype(np.float64) - want[name]).max()
        assert err <= 1e-6 * max(1.0, np.abs(want[name]).max()), (name, err)
    missing = {k for k in want_meta.keys() - got_meta.keys() if not k.startswith("general.")}
    assert not missing, f"metadata keys not written: {sorted(missing)}"
    for key in want_meta.keys() & got_meta.keys() - OWN_KEYS:
        a, b = got_meta[key], want_meta[key]
        same = np.allclose(a, b, rtol=1e-6) if isinstance(b, float) or (isinstance(b, list) and b and isinstance(b[0], float)) else a == b
        assert same, (key, str(a)[:200], str(b)[:200])
    print(f"{len(want)} tensors and {len(want_meta.keys() & got_meta.keys() - OWN_KEYS)} metadata keys equal the reference's")


def gguf_twin(out, fixture, quant):
    import tempfile
    import gguf
    import make_gguf_fixtures
    with tempfile.TemporaryDirectory() as tmp:
        twin = pathlib.Path(tmp) / "twin.gguf"
        make_gguf_fixtures.write(fixture, twin, gguf.GGMLQuantizationType[quant.upper()])
        gguf_like(out, twin)


def transformers_load(path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = pathlib.Path(path)
    kw = dict(gguf_file=path.name) if path.suffix == ".gguf" else {}
    folder = str(path.parent if path.suffix == ".gguf" else path)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **kw)
    return model, AutoTokenizer.from_pretrained(folder, **kw)


def transformers(out, source):
    got, got_tok = transformers_load(out)
    want, want_tok = transformers_load(source)
    got_state, want_state = got.state_dict(), want.state_dict()
    assert got_state.keys() == want_state.keys(), sorted(set(got_state) ^ set(want_state))
    for name, w in want_state.items():
        err = float((got_state[name].double() - w.double()).abs().max())
        assert err <= 1e-6 * max(1.0, float(w.abs().max())), (name, err)
    ids = got_tok(TEXT)["input_ids"]
    assert ids == want_tok(TEXT)["input_ids"], (ids, want_tok(TEXT)["input_ids"])
    assert got_tok.decode(ids, skip_special_tokens=True) == want_tok.decode(ids, skip_special_tokens=True)
    print(f"transformers: {len(want_state)} tensors and the tokenizer's {len(ids)} ids equal the source's")


def tokenizer(out, source):
    from transformers import AutoTokenizer
    load = lambda p: AutoTokenizer.from_pretrained(str(pathlib.Path(p).parent), gguf_file=pathlib.Path(p).name)
    got, want = load(out), load(source)
    texts = [TEXT] + [l for l in pathlib.Path(source + ".inp").read_text().split("\n__ggml_vocab_test__\n") if l] if pathlib.Path(source + ".inp").exists() else [TEXT]
    for text in texts:
        assert got(text)["input_ids"] == want(text)["input_ids"], (text, got(text)["input_ids"], want(text)["input_ids"])
    print(f"transformers: the tokenizers' ids equal on {len(texts)} texts")


def mlx_like(out, reference):
    import mlx.core as mx
    load = lambda folder: {k: np.array(v.astype(mx.float32) if v.dtype == mx.bfloat16 else v) for f in sorted(pathlib.Path(folder).glob("*.safetensors")) for k, v in mx.load(str(f)).items()}
    got, want = load(out), load(reference)
    assert got.keys() == want.keys(), sorted(set(got) ^ set(want))
    for name in want:
        assert got[name].dtype == want[name].dtype and got[name].shape == want[name].shape, (name, got[name].dtype, want[name].dtype)
        assert np.array_equal(got[name], want[name]), (name, np.abs(got[name].astype(np.float64) - want[name]).max())
    print(f"{len(want)} tensors equal mlx_lm.convert's bit for bit")


def mlx_convert(out, source, bits, group):
    import tempfile
    from mlx_lm import convert
    with tempfile.TemporaryDirectory() as tmp:
        convert(source, f"{tmp}/mlx", quantize=True, q_bits=int(bits), q_group_size=int(group))
        mlx_like(out, f"{tmp}/mlx")


def mlx_generate(out, prompt, n):
    from mlx_lm import generate, load
    model, tok = load(out)
    ids = tok.encode(prompt)
    print(generate(model, tok, ids, max_tokens=int(n)), end="")


if __name__ == "__main__":
    {"gguf-like": gguf_like, "gguf-twin": gguf_twin, "transformers": transformers, "tokenizer": tokenizer, "mlx-like": mlx_like, "mlx-convert": mlx_convert, "mlx-generate": mlx_generate}[sys.argv[1]](*sys.argv[2:])
