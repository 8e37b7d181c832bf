"""The shared layer library: decoder building blocks written once against `ops`
(see ops.py), so they both run in torch and trace to graph JSON."""


def rms_norm(ops, x, weight_name):
    """RMSNorm with a learned gain: x / rms(x) * g.  x [T, hidden]."""
    g = ops.weight(weight_name, ["hidden"])  # [hidden]
    return ops.mul(ops.rms_norm(x, ops.param("rms_norm_eps")), g)


def linear(ops, x, name, out_dim, in_dim, bias=False, first_row=None):
    """x @ W.T (+ b), with Hugging Face's [out, in] weight layout; `first_row`: the rows
    first_row .. first_row + out_dim of a fused weight (Phi-3's qkv_proj, gate_up_proj)."""
    y = ops.matmul(x, ops.weight(f"{name}.weight", [out_dim, in_dim], first_row=first_row))  # [T, out]
    return ops.add(y, ops.weight(f"{name}.bias", [out_dim])) if bias else y


def rope(ops, x, pos):
    """Rotary position embedding (rotate-half form), Llama-3 scaling included."""
    return ops.rope(x, pos, head_dim=ops.dim("head_dim"), theta=ops.param("rope_theta"),
                    scaling=ops.param("rope_scaling"))


def head_norm(ops, x, weight_name):
    """RMSNorm over each head of x, with a gain shared by the heads (Qwen3's q/k norms).  x [T, heads·head_dim]."""
    g = ops.weight(weight_name, ["head_dim"])  # [head_dim]
    return ops.head_rms_norm(x, g, ops.param("rms_norm_eps"), head_dim=ops.dim("head_dim"))


def attention(ops, x, layer, pos, prefix, qkv_bias=False, window=None, scale=None, qk_norm=False):
    """Grouped-query self-attention that writes this pass's K/V into the layer's cache; with a
    `window`, each query sees only the last `window` positions; scores scaled by `scale` (default
    head_dim^-0.5); with `qk_norm`, q and k are normalised per head before rope."""
    def projected(name, dim):  # [T, dim], normalised per head if asked, then rotated
        y = linear(ops, x, f"{prefix}.{name}_proj", dim, "hidden", qkv_bias)
        return rope(ops, head_norm(ops, y, f"{prefix}.{name}_norm.weight") if qk_norm else y, pos)
    q, k = projected("q", "q_dim"), projected("k", "kv_dim")  # [T, q_dim], [T, kv_dim]
    v = linear(ops, x, f"{prefix}.v_proj", "kv_dim", "hidden", qkv_bias)  # [T, kv_dim]
    return attend(ops, q, k, v, layer, pos, prefix, window, scale)


def attend(ops, q, k, v, layer, pos, prefix, window=None, scale=None):
    """Writes k, v into the layer's cache, attends with q, projects out.  q [T, q_dim], k, v [T, kv_dim]."""
    k_cache = ops.kv_write(ops.input(f"k_cache.{layer}", ["S", "kv_dim"]), k, pos)  # [S, kv_dim]
    v_cache = ops.kv_write(ops.input(f"v_cache.{layer}", ["S", "kv_dim"]), v, pos)  # [S, kv_dim]
    o = ops.attention(q, k_cache, v_cache, pos, heads=ops.dim("heads"),
                      kv_heads=ops.dim("kv_heads"), head_dim=ops.dim("head_dim"), scale=scale, window=window)
    return linear(ops, o, f"{prefix}.o_proj", "hidden", "q_dim")  # [T, hidden]


def swiglu_mlp(ops, x, prefix):
    """down(silu(gate(x)) * up(x)).  x [T, hidden] -> [T, hidden]."""
    gate = linear(ops, x, f"{prefix}.gate_proj", "ffn", "hidden")  # [T, ffn]
    up = linear(ops, x, f"{prefix}.up_proj", "ffn", "hidden")  # [T, ffn]
    return linear(ops, ops.mul(ops.silu(gate), up), f"{prefix}.down_proj", "hidden", "ffn")


def embed(ops, tokens):
    """Token embedding lookup.  tokens [T] -> [T, hidden]."""
    return ops.gather(ops.weight("model.embed_tokens.weight", ["vocab", "hidden"]), tokens)


def lm_head(ops, x, rows):
    """Final norm and output projection for the wanted rows only.  -> logits [R, vocab]."""
    x = rms_norm(ops, ops.gather(x, rows), "model.norm.weight")  # [R, hidden]
    w = ops.weight("lm_head.weight", ["vocab", "hidden"], tied_to="model.embed_tokens.weight")
    return ops.matmul(x, w)


def standard_inputs(ops):
    """The graph inputs every decoder shares."""
    tokens = ops.input("tokens", ["T"], dtype="i32")  # token ids of this pass
    pos = ops.input("positions", ["T"], dtype="i32")  # their positions in the sequence
    rows = ops.input("logit_rows", ["R"], dtype="i32")  # rows of this pass whose logits are wanted
    return tokens, pos, rows


def pre_norm_block(ops, layer, x, pos, qkv_bias=False, window=None, qk_norm=False):
    """A Llama-style decoder layer: x + attn(norm(x)), then + mlp(norm(x)).  x [T, hidden]."""
    p = f"model.layers.{layer}"
    x = ops.add(x, attention(ops, rms_norm(ops, x, f"{p}.input_layernorm.weight"), layer, pos, f"{p}.self_attn", qkv_bias, window, qk_norm=qk_norm))
    return ops.add(x, swiglu_mlp(ops, rms_norm(ops, x, f"{p}.post_attention_layernorm.weight"), f"{p}.mlp"))


def decoder(ops, block):
    """Embedding, `block(ops, layer, x, pos)` repeated over the layers, final norm and head."""
    tokens, pos, rows = standard_inputs(ops)
    x = embed(ops, tokens)  # [T, hidden]
    x = ops.repeat("layers", x, lambda layer, x: block(ops, layer, x, pos))
    return {"logits": lm_head(ops, x, rows)}  # [R, vocab]
