"""Phi-3 (mini, medium; no longrope or partial rotary yet): Llama's decoder with q, k and v in one
fused qkv_proj and gate and up in one gate_up_proj (each read as row ranges of the fused weight),
and a sliding window where the config sets one."""
import layers
import llama

SPEC = dict(llama.SPEC, architecture="phi3", hf_architectures=["Phi3ForCausalLM"], gguf=None,
            params=llama.SPEC["params"] | {"sliding_window": {"config": ["sliding_window"], "default": None}},
            supported={"partial_rotary_factor": [1.0]})


def attention(ops, x, layer, pos, prefix):
    """Self-attention with q, k, v as rows [0, q_dim), [q_dim, q_dim + kv_dim), [q_dim + kv_dim, …) of qkv_proj."""
    qkv = f"{prefix}.qkv_proj"
    q = layers.rope(ops, layers.linear(ops, x, qkv, "q_dim", "hidden", first_row="0"), pos)  # [T, q_dim]
    k = layers.rope(ops, layers.linear(ops, x, qkv, "kv_dim", "hidden", first_row="q_dim"), pos)  # [T, kv_dim]
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
