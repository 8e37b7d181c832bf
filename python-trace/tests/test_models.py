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
