"""Qwen2 / Qwen2.5: Llama's decoder with biases on the q, k and v projections."""
import layers
import llama

SPEC = dict(llama.SPEC, architecture="qwen2", hf_architectures=["Qwen2ForCausalLM"], gguf={"architecture": "qwen2"},
            supported={"use_sliding_window": [False]})


def block(ops, layer, x, pos):
    return layers.pre_norm_block(ops, layer, x, pos, qkv_bias=True)


def forward(ops):
    return layers.decoder(ops, block)
