"""Granite 3: Llama's decoder with multipliers on the embeddings, on each residual branch and on
the attention scores, and logits divided by `logits_scaling`."""
import layers
import llama

GGUF = {"architecture": "granite", "permuted_qk": True, "config": {
    "embedding_multiplier": "embedding_scale", "residual_multiplier": "residual_scale",
    "attention_multiplier": "attention.scale", "logits_scaling": "logit_scale"}}

SPEC = dict(llama.SPEC, architecture="granite", hf_architectures=["GraniteForCausalLM"], gguf=GGUF, params=llama.SPEC["params"] | {
    "embedding_multiplier": {"config": ["embedding_multiplier"], "default": 1.0},
    "residual_multiplier": {"config": ["residual_multiplier"], "default": 1.0},
    "attention_multiplier": {"config": ["attention_multiplier"], "default": None},
    "logits_scaling": {"config": ["logits_scaling"], "default": 1.0},
})


def block(ops, layer, x, pos):
    p, r = f"model.layers.{layer}", ops.param("residual_multiplier")
    a = layers.attention(ops, layers.rms_norm(ops, x, f"{p}.input_layernorm.weight"), layer, pos, f"{p}.self_attn",
                         scale=ops.param("attention_multiplier"))  # [T, hidden]
    x = ops.add(x, ops.scale(a, factor=r))
    m = layers.gated_mlp(ops, layers.rms_norm(ops, x, f"{p}.post_attention_layernorm.weight"), f"{p}.mlp")
    return ops.add(x, ops.scale(m, factor=r))


def forward(ops):
    tokens, pos, rows = layers.standard_inputs(ops)
    x = ops.scale(layers.embed(ops, tokens), factor=ops.param("embedding_multiplier"))  # [T, hidden]
    x = ops.repeat("layers", x, lambda layer, x: block(ops, layer, x, pos))
    return {"logits": ops.scale(layers.lm_head(ops, x, rows), divisor=ops.param("logits_scaling"))}  # [R, vocab]
