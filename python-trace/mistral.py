"""Mistral: Llama's decoder with sliding-window attention where the config sets `sliding_window`
(Mistral 7B v0.1: 4096; null in later versions, which attend to everything)."""
import layers
import llama

# llama.cpp writes Mistral's GGUF files as `llama`: they load with llama.py's graph
SPEC = dict(llama.SPEC, architecture="mistral", hf_architectures=["MistralForCausalLM"], gguf=None,
            params=llama.SPEC["params"] | {"sliding_window": {"config": ["sliding_window"], "default": None}})


def block(ops, layer, x, pos):
    return layers.pre_norm_block(ops, layer, x, pos, window=ops.param("sliding_window"))


def forward(ops):
    return layers.decoder(ops, block)
