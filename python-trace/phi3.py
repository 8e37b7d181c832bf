"""Phi-3 / Phi-3.5 / Phi-4-mini: Llama's decoder with q, k and v in one fused qkv_proj and gate and
up in one gate_up_proj (each read as row ranges of the fused weight), rope over the first
`partial_rotary_factor` of each head with longrope scaling where configured, and a sliding window
where the config sets one."""
import layers
import llama

# llama.cpp keeps the fused tensors (qkv in attn_qkv, gate|up in ffn_up) and stores longrope's
# factors as tensors
GGUF = {"architecture": "phi3", "sentencepiece": "phi3", "tensors": {"attn_qkv": "self_attn.qkv_proj", "ffn_up": "mlp.gate_up_proj"},
        "config": {"sliding_window": "attention.sliding_window", "rotary_dims": "rope.dimension_count",
                   "rope_scaling.original_max_position_embeddings": "rope.scaling.original_context_length",
                   "rope_scaling.attention_factor": "rope.scaling.attn_factor"},
        "tensor_config": {"rope_factors_long.weight": "rope_scaling.long_factor", "rope_factors_short.weight": "rope_scaling.short_factor"}}

SPEC = dict(llama.SPEC, architecture="phi3", hf_architectures=["Phi3ForCausalLM"], gguf=GGUF,
            params=llama.SPEC["params"] | {
                "sliding_window": {"config": ["sliding_window"], "default": None},
                "rotary_fraction": {"config": ["rope_parameters.partial_rotary_factor", "partial_rotary_factor"], "default": 1.0},
                "original_context": {"config": ["rope_parameters.original_max_position_embeddings", "original_max_position_embeddings"]},
                # GGUF files say how many dimensions turn, not which fraction
                "rotary_dims": {"config": ["rotary_dims"]},
            })


def rope(ops, x, pos):
    rotary_dim = ops.first(ops.param("rotary_dims"), ops.times(ops.dim("head_dim"), ops.param("rotary_fraction")))
    return layers.rope(ops, x, pos, rotary_dim=rotary_dim,
                       original_context=ops.param("original_context"))


def attention(ops, x, layer, pos, prefix):
    """Self-attention with q, k, v as rows [0, q_dim), [q_dim, q_dim + kv_dim), [q_dim + kv_dim, …) of qkv_proj."""
    qkv = f"{prefix}.qkv_proj"
    q = rope(ops, layers.linear(ops, x, qkv, "q_dim", "hidden", first_row="0"), pos)  # [T, q_dim]
    k = rope(ops, layers.linear(ops, x, qkv, "kv_dim", "hidden", first_row="q_dim"), pos)  # [T, kv_dim]
    v = layers.linear(ops, x, qkv, "kv_dim", "hidden", first_row="q_dim + kv_dim")  # [T, kv_dim]
    return layers.attend(ops, q, k, v, layer, pos, prefix, window=ops.param("sliding_window"))


def mlp(ops, x, prefix):
    """down(silu(gate) * up), gate and up the two halves of gate_up_proj.  x [T, hidden]."""
    gate = layers.linear(ops, x, f"{prefix}.gate_up_proj", "ffn", "hidden", first_row="0")  # [T, ffn]
    up = layers.linear(ops, x, f"{prefix}.gate_up_proj", "ffn", "hidden", first_row="ffn")  # [T, ffn]
    return layers.linear(ops, ops.mul(ops.silu(gate), up), f"{prefix}.down_proj", "hidden", "ffn")


def block(ops, layer, x, pos):
    p = f"model.layers.{layer}"
    x = ops.add(x, attention(ops, layers.rms_norm(ops, x, f"{p}.input_layernorm.weight"), layer, pos, f"{p}.self_attn"))
    return ops.add(x, mlp(ops, layers.rms_norm(ops, x, f"{p}.post_attention_layernorm.weight"), f"{p}.mlp"))


def forward(ops):
    return layers.decoder(ops, block)
