"""Gemma 2: (1 + w) RMSNorms before and after attention and the MLP, embeddings scaled by
sqrt(hidden), a GELU-tanh gated MLP, scores scaled by query_pre_attn_scalar^-0.5, soft-capped
attention scores and logits, and sliding-window layers alternating with global ones."""
import layers
import llama

# llama.cpp stores every norm gain as 1 + w, calls the pre-MLP norm ffn_norm, and has no
# query_pre_attn_scalar (it scales by the key length, as all Gemma 2 but the 27B do)
GGUF = {"architecture": "gemma2", "offsets_applied": True, "sentencepiece": "gemma",
        "tensors": {"ffn_norm": "pre_feedforward_layernorm", "post_attention_norm": "post_attention_layernorm",
                    "post_ffw_norm": "post_feedforward_layernorm"},
        "config": {"attn_logit_softcapping": "attn_logit_softcapping", "final_logit_softcapping": "final_logit_softcapping",
                   "sliding_window": "attention.sliding_window", "sliding_window_pattern": "attention.sliding_window_pattern",
                   "head_dim": "attention.key_length",
                   "query_pre_attn_scalar": "attention.key_length"}}

SPEC = dict(
    llama.SPEC, architecture="gemma2", hf_architectures=["Gemma2ForCausalLM"], gguf=GGUF,
    supported={"hidden_activation": ["gelu_pytorch_tanh"], "hidden_act": ["gelu_pytorch_tanh"], "attention_bias": [False]},
    # each layer's kind: `layer_types`, else every `period`-th layer global and the others sliding
    layer_kinds={"config": ["layer_types"], "period": {"config": ["sliding_window_pattern"], "default": 2},
                 "kinds": ["sliding_attention", "full_attention"]},
    params=llama.SPEC["params"] | {
        "window": {"by_layer_kind": {"sliding_attention": {"config": ["sliding_window"], "default": 4096},
                                     "full_attention": {"default": None}}},
        "query_pre_attn_scalar": {"config": ["query_pre_attn_scalar"], "default": 256},
        "attn_logit_softcapping": {"config": ["attn_logit_softcapping"], "default": None},
        "final_logit_softcapping": {"config": ["final_logit_softcapping"], "default": None},
    })


def block(ops, layer, x, pos, qk_norm=False):
    """x + norm(attn(norm(x))), then + norm(mlp(norm(x))); every norm's gain is 1 + w.  x [T, hidden]."""
    p = f"model.layers.{layer}"
    def norm(y, name):
        return layers.rms_norm(ops, y, f"{p}.{name}.weight", offset=1.0)
    a = layers.attention(ops, norm(x, "input_layernorm"), layer, pos, f"{p}.self_attn", qk_norm=qk_norm, norm_offset=1.0,
                         window=ops.param("window"), scale=ops.power(ops.param("query_pre_attn_scalar"), -0.5),
                         softcap=ops.param("attn_logit_softcapping"))  # [T, hidden]
    x = ops.add(x, norm(a, "post_attention_layernorm"))
    m = layers.gated_mlp(ops, norm(x, "pre_feedforward_layernorm"), f"{p}.mlp", act="gelu_tanh")  # [T, hidden]
    return ops.add(x, norm(m, "post_feedforward_layernorm"))


def decoder(ops, block):
    tokens, pos, rows = layers.standard_inputs(ops)
    x = ops.scale(layers.embed(ops, tokens), factor=ops.power(ops.dim("hidden"), 0.5))  # [T, hidden]
    x = ops.repeat("layers", x, lambda layer, x: block(ops, layer, x, pos))
    logits = layers.lm_head(ops, x, rows, norm_offset=1.0)  # [R, vocab]
    return {"logits": ops.softcap(logits, ops.param("final_logit_softcapping"))}


def forward(ops):
    return decoder(ops, block)
