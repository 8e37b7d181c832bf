"""Llama (and SmolLM, Llama-2/3, Mistral-style dense) decoder."""
import layers

SPEC = {
    "architecture": "llama",
    "hf_architectures": ["LlamaForCausalLM"],
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
    # scalar parameters: config keys tried in order, else the default
    "params": {
        "rms_norm_eps": {"config": ["rms_norm_eps"], "default": 1e-6},
        "rope_theta": {"config": ["rope_parameters.rope_theta", "rope_theta"], "default": 10000.0},
        "rope_scaling": {"config": ["rope_parameters", "rope_scaling"], "default": None},
    },
}


def decoder_layer(ops, layer, x, pos):
    p = f"model.layers.{layer}"
    x = ops.add(x, layers.attention(ops, layers.rms_norm(ops, x, f"{p}.input_layernorm.weight"),
                                    layer, pos, f"{p}.self_attn"))
    return ops.add(x, layers.swiglu_mlp(ops, layers.rms_norm(ops, x, f"{p}.post_attention_layernorm.weight"),
                                        f"{p}.mlp"))


def forward(ops):
    tokens, pos, rows = layers.standard_inputs(ops)
    x = layers.embed(ops, tokens)  # [T, hidden]
    x = ops.repeat("layers", x, lambda layer, x: decoder_layer(ops, layer, x, pos))
    return {"logits": layers.lm_head(ops, x, rows)}  # [R, vocab]
