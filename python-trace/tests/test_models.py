"""Kiln's definition of each family against transformers' own model: logits of a prefill
and of decode steps that use the KV cache, float32, tiny random configs (tiny.py)."""
import pathlib
import sys

import pytest
import torch

sys.path.insert(0, str(pathlib.Path(__file__).parent.parent))
from reference import TorchModel  # noqa: E402
from tiny import CONFIGS, tiny_model  # noqa: E402

@pytest.mark.parametrize("name", CONFIGS)
def test_prefill_and_decode_match_transformers(name):
    hf, arch = tiny_model(name)
    kiln = TorchModel(arch, hf.config.to_dict(), hf.state_dict())
    prompt = [5, 17, 3, 88, 42, 9, 261]
    with torch.no_grad():
        out = hf(torch.tensor([prompt]), use_cache=True)
    ours = kiln.forward(prompt, list(range(len(prompt))))
    torch.testing.assert_close(ours, out.logits[0], rtol=1e-5, atol=1e-5)

    past, seq = out.past_key_values, list(prompt)
    for step in range(4):
        token = int(out.logits[0, -1].argmax())
        seq.append(token)
        with torch.no_grad():
            out = hf(torch.tensor([[token]]), past_key_values=past, use_cache=True)
        past = out.past_key_values
        ours = kiln.forward([token], [len(seq) - 1])
        torch.testing.assert_close(ours, out.logits[0], rtol=1e-5, atol=1e-5)


def test_logit_rows_select_rows():
    hf, arch = tiny_model("llama_tied_gqa")
    kiln = TorchModel(arch, hf.config.to_dict(), hf.state_dict())
    all_rows = kiln.forward([1, 2, 3], [0, 1, 2])
    kiln = TorchModel(arch, hf.config.to_dict(), hf.state_dict())
    torch.testing.assert_close(kiln.forward([1, 2, 3], [0, 1, 2], logit_rows=[2]), all_rows[2:])


def test_gemma_query_pre_attn_scalar_other_than_head_dim():
    """The fixtures keep query_pre_attn_scalar = head_dim (llama.cpp's files can only say that);
    Gemma 3 27B's is not, so the definition is checked with one that differs."""
    import tiny
    tiny.CONFIGS["gemma2_qpas"] = ("gemma2", dict(tiny.CONFIGS["gemma2_softcap"][1], query_pre_attn_scalar=40))
    try:
        test_prefill_and_decode_match_transformers("gemma2_qpas")
    finally:
        del tiny.CONFIGS["gemma2_qpas"]


def test_longrope_long_factors_match_transformers():
    """Past the original context, longrope turns with its long factors (and the attention factor):
    Kiln's tables against transformers' own rotary embedding at positions 20..23 of a 16-position original."""
    from ops import rope_attention_factor, rope_inv_freq
    hf, _ = tiny_model("phi3_longrope_partial")
    rotary = hf.model.rotary_emb
    positions = torch.arange(20, 24)[None]
    cos, sin = rotary(torch.zeros(1, 4, 8), positions)
    scaling, dim = hf.config.rope_parameters, cos.shape[-1]
    inv = torch.stack([rope_inv_freq(dim, scaling["rope_theta"], scaling, int(p), 16) for p in positions[0]])
    angles = torch.cat([positions[0, :, None] * inv] * 2, -1)
    factor = rope_attention_factor(scaling, hf.config.max_position_embeddings, 16)
    torch.testing.assert_close(angles.cos() * factor, cos[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(angles.sin() * factor, sin[0], rtol=1e-6, atol=1e-6)
    assert factor > 1.0
