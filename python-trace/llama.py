"""Llama (and SmolLM, Llama-2/3, Mistral-style dense) decoder."""
import layers

SPEC = {
    "architecture": "llama",
    "hf_architectures": ["LlamaForCausalLM"],
    # how llama.cpp writes it as GGUF: `general.architecture`; Q/K rows permuted for its rope; Llama 3's
    # rope scaling as a tensor of per-frequency divisors (see graphs/README.md for every key)
    "gguf": {"architecture": "llama", "permuted_qk": True, "tensor_config": {"rope_freqs.weight": "rope_scaling.freq_factors"}},
    # symbol -> config keys tried in order, else a default expression of earlier symbols
    "dims": {
        "hidden": {"config": ["hidden_size"]},
        "heads": {"config": ["num_attention_heads"]},
        "kv_heads": {"config": ["num_key_value_heads"], "default": "heads"},
        "head_dim": {"config": ["head_dim"], "default": "hidden / heads"},
        "ffn": {"config": ["intermediate_size"]},
        "vocab": {"config": ["vocab_size"]},
        "layers": {"config": ["num_hidden_layers"]},
        "max_context": {"config": ["max_position_embeddings"], "default": "2048"},
        "q_dim": {"default": "heads * head_dim"},
        "kv_dim": {"default": "kv_heads * head_dim"},
    },
    # the only values these config keys may have where a config sets them: this definition does
    # not implement the others, so they are refused, never silently ignored
    "supported": {"attention_bias": [False], "mlp_bias": [False]},
    # scalar parameters: config keys tried in order, else the default
    "params": {
        "rms_norm_eps": {"config": ["rms_norm_eps"], "default": 1e-6},
        "rope_theta": {"config": ["rope_parameters.rope_theta", "rope_theta"], "default": 10000.0},
        "rope_scaling": {"config": ["rope_parameters", "rope_scaling"], "default": None},
    },
}


def forward(ops):
    return layers.decoder(ops, layers.pre_norm_block)
