"""The shared layer library: decoder building blocks written once against `ops`
(see ops.py), so they both run in torch and trace to graph JSON."""


def rms_norm(ops, x, weight_name, offset=None):
    """RMSNorm with a learned gain: x / rms(x) * g, the gain stored less `offset` (Gemma's 1 + w).  x [T, hidden]."""
    g = ops.weight(weight_name, ["hidden"], offset=offset)  # [hidden]
    return ops.mul(ops.rms_norm(x, ops.param("rms_norm_eps")), g)


def linear(ops, x, name, out_dim, in_dim, bias=False, first_row=None):
    """x @ W.T (+ b), with Hugging Face's [out, in] weight layout; `first_row`: the rows
    first_row .. first_row + out_dim of a fused weight (Phi-3's qkv_proj, gate_up_proj)."""
    y = ops.matmul(x, ops.weight(f"{name}.weight", [out_dim, in_dim], first_row=first_row))  # [T, out]
    return ops.add(y, ops.weight(f"{name}.bias", [out_dim])) if bias else y


def rope(ops, x, pos, **partial):
    """Rotary position embedding (rotate-half form) with the config's rope scaling; `partial`:
    Phi-3's `rotary_dim` and `original_context`."""
    return ops.rope(x, pos, head_dim=ops.dim("head_dim"), theta=ops.param("rope_theta"),
                    scaling=ops.param("rope_scaling"), **partial)


def head_norm(ops, x, weight_name, offset=None):
    """RMSNorm over each head of x, with a gain shared by the heads (Qwen3's and Gemma 3's q/k
    norms).  x [T, heads·head_dim]."""
    g = ops.weight(weight_name, ["head_dim"], offset=offset)  # [head_dim]
    return ops.head_rms_norm(x, g, ops.param("rms_norm_eps"), head_dim=ops.dim("head_dim"))


def attention(ops, x, layer, pos, prefix, qkv_bias=False, qk_norm=False, norm_offset=None, **attend_args):
    """Grouped-query self-attention that writes this pass's K/V into the layer's cache; with
    `qk_norm`, q and k are normalised per head before rope; `attend_args`: `window`, `scale`,
    `softcap` of `attend`."""
    def projected(name, dim):  # [T, dim], normalised per head if asked, then rotated
        y = linear(ops, x, f"{prefix}.{name}_proj", dim, "hidden", qkv_bias)
        return rope(ops, head_norm(ops, y, f"{prefix}.{name}_norm.weight", norm_offset) if qk_norm else y, pos)
    q, k = projected("q", "q_dim"), projected("k", "kv_dim")  # [T, q_dim], [T, kv_dim]
    v = linear(ops, x, f"{prefix}.v_proj", "kv_dim", "hidden", qkv_bias)  # [T, kv_dim]
    return attend(ops, q, k, v, layer, pos, prefix, **attend_args)


def attend(ops, q, k, v, layer, pos, prefix, window=None, scale=None, softcap=None):
    """Writes k, v into the layer's cache, attends with q, projects out: each query sees the last
    `window` positions (null: all), scores scaled by `scale` (default head_dim^-0.5) and soft-capped
    to ±`softcap` where set.  q [T, q_dim], k, v [T, kv_dim]."""
    k_cache = ops.kv_write(ops.input(f"k_cache.{layer}", ["S", "kv_dim"]), k, pos)  # [S, kv_dim]
    v_cache = ops.kv_write(ops.input(f"v_cache.{layer}", ["S", "kv_dim"]), v, pos)  # [S, kv_dim]
    o = ops.attention(q, k_cache, v_cache, pos, heads=ops.dim("heads"), kv_heads=ops.dim("kv_heads"),
                      head_dim=ops.dim("head_dim"), scale=scale, window=window, softcap=softcap)
    return linear(ops, o, f"{prefix}.o_proj", "hidden", "q_dim")  # [T, hidden]


def gated_mlp(ops, x, prefix, act="silu"):
    """down(act(gate(x)) * up(x)), act `silu` (SwiGLU) or `gelu_tanh` (GeGLU).  x [T, hidden] -> [T, hidden]."""
    gate = linear(ops, x, f"{prefix}.gate_proj", "ffn", "hidden")  # [T, ffn]
    up = linear(ops, x, f"{prefix}.up_proj", "ffn", "hidden")  # [T, ffn]
    return linear(ops, ops.mul(getattr(ops, act)(gate), up), f"{prefix}.down_proj", "hidden", "ffn")


def embed(ops, tokens):
    """Token embedding lookup.  tokens [T] -> [T, hidden]."""
    return ops.gather(ops.weight("model.embed_tokens.weight", ["vocab", "hidden"]), tokens)


def lm_head(ops, x, rows, norm_offset=None):
    """Final norm and output projection for the wanted rows only.  -> logits [R, vocab]."""
    x = rms_norm(ops, ops.gather(x, rows), "model.norm.weight", norm_offset)  # [R, hidden]
    w = ops.weight("lm_head.weight", ["vocab", "hidden"], tied_to="model.embed_tokens.weight")
    return ops.matmul(x, w)


def standard_inputs(ops):
    """The graph inputs every decoder shares."""
    tokens = ops.input("tokens", ["T"], dtype="i32")  # token ids of this pass
    pos = ops.input("positions", ["T"], dtype="i32")  # their positions in the sequence
    rows = ops.input("logit_rows", ["R"], dtype="i32")  # rows of this pass whose logits are wanted
    return tokens, pos, rows


def pre_norm_block(ops, layer, x, pos, **attention_args):
    """A Llama-style decoder layer: x + attn(norm(x)), then + mlp(norm(x)).  x [T, hidden]."""
    p = f"model.layers.{layer}"
    x = ops.add(x, attention(ops, rms_norm(ops, x, f"{p}.input_layernorm.weight"), layer, pos, f"{p}.self_attn", **attention_args))
    return ops.add(x, gated_mlp(ops, rms_norm(ops, x, f"{p}.post_attention_layernorm.weight"), f"{p}.mlp"))


def decoder(ops, block):
    """Embedding, `block(ops, layer, x, pos)` repeated over the layers, final norm and head."""
    tokens, pos, rows = standard_inputs(ops)
    x = embed(ops, tokens)  # [T, hidden]
    x = ops.repeat("layers", x, lambda layer, x: block(ops, layer, x, pos))
    return {"logits": lm_head(ops, x, rows)}  # [R, vocab]
