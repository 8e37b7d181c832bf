"""Qwen3 (dense): Llama's decoder with an RMSNorm over each head of q and k before rope."""
import layers
import llama

SPEC = dict(llama.SPEC, architecture="qwen3", hf_architectures=["Qwen3ForCausalLM"], gguf={"architecture": "qwen3"})


def block(ops, layer, x, pos):
    return layers.pre_norm_block(ops, layer, x, pos, qk_norm=True)


def forward(ops):
    return layers.decoder(ops, block)
