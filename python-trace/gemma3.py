"""Gemma 3 (text): Gemma 2's decoder with (1 + w) RMSNorms over each head of q and k, no soft-caps
by default, five sliding-window layers to each global one, and a rope base (and scaling) per
kind of layer."""
import gemma2
import llama

# rope settings per layer kind: transformers 5's `rope_parameters.<kind>`, else the older
# `rope_local_base_freq` (sliding) and `rope_theta` + `rope_scaling` (global)
ROPE = {
    "rope_theta": {"by_layer_kind": {
        "sliding_attention": {"config": ["rope_parameters.sliding_attention.rope_theta", "rope_local_base_freq"], "default": 10000.0},
        "full_attention": {"config": ["rope_parameters.full_attention.rope_theta", "rope_theta"], "default": 1000000.0}}},
    "rope_scaling": {"by_layer_kind": {
        "sliding_attention": {"config": ["rope_parameters.sliding_attention"], "default": None},
        "full_attention": {"config": ["rope_parameters.full_attention", "rope_scaling"], "default": None}}},
}

SPEC = dict(
    gemma2.SPEC, architecture="gemma3", hf_architectures=["Gemma3ForCausalLM"],
    # the global layers' rope scaling as llama.cpp writes it
    gguf=gemma2.GGUF | {"architecture": "gemma3", "config": gemma2.GGUF["config"] | {
        "rope_scaling.rope_type": "rope.scaling.type", "rope_scaling.factor": "rope.scaling.factor"}},
    supported=gemma2.SPEC["supported"] | {"use_bidirectional_attention": [False]},
    layer_kinds=gemma2.SPEC["layer_kinds"] | {"period": {"config": ["sliding_window_pattern"], "default": 6}},
    params=gemma2.SPEC["params"] | ROPE,
    dims=llama.SPEC["dims"] | {"head_dim": {"config": ["head_dim"], "default": "256"}},
)


def block(ops, layer, x, pos):
    return gemma2.block(ops, layer, x, pos, qk_norm=True)


def forward(ops):
    return gemma2.decoder(ops, block)
