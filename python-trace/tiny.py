"""Tiny random configs of each family, shared by the Python tests and the Rust fixtures."""
import torch
from transformers import (Gemma2Config, Gemma2ForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig, GraniteConfig, GraniteForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Phi3Config, Phi3ForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

import gemma2
import gemma3
import granite
import llama
import mistral
import phi3
import qwen2
import qwen3

BASE = dict(vocab_size=272, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5)

# family -> (transformers config class, model class, Kiln definition)
FAMILIES = {
    "llama": (LlamaConfig, LlamaForCausalLM, llama),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, qwen2),
    "mistral": (MistralConfig, MistralForCausalLM, mistral),
    "granite": (GraniteConfig, GraniteForCausalLM, granite),
    "qwen3": (Qwen3Config, Qwen3ForCausalLM, qwen3),
    "phi3": (Phi3Config, Phi3ForCausalLM, phi3),
    "gemma2": (Gemma2Config, Gemma2ForCausalLM, gemma2),
    "gemma3": (Gemma3TextConfig, Gemma3ForCausalLM, gemma3),
}

CONFIGS = {
    # SmolLM-like: tied embeddings, grouped-query attention
    "llama_tied_gqa": ("llama", dict(tie_word_embeddings=True)),
    # Llama-3-like: untied lm_head, rope scaling, head_dim not hidden/heads, full multi-head
    "llama_untied_llama3_rope": ("llama", dict(
        tie_word_embeddings=False, num_key_value_heads=4, head_dim=24,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 16})),
    # Qwen2.5-like: q/k/v biases, untied lm_head, a large rope base
    "qwen2_untied_bias": ("qwen2", dict(tie_word_embeddings=False, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
    # Mistral v0.1-like with a window of 5 positions, so an 8-token prompt and decode go past it
    "mistral_sliding_window": ("mistral", dict(tie_word_embeddings=False, sliding_window=5)),
    # Qwen3-like: per-head q/k norms (random gains), head_dim not hidden/heads, tied embeddings
    "qwen3_qk_norm": ("qwen3", dict(tie_word_embeddings=True, head_dim=32)),
    # Phi-3-mini-like: fused qkv_proj and gate_up_proj, grouped-query, a window of 6
    "phi3_fused_qkv": ("phi3", dict(tie_word_embeddings=False, sliding_window=6, pad_token_id=0, bos_token_id=0, eos_token_id=2)),
    # Granite 3-like multipliers, none of them 1
    "granite_multipliers": ("granite", dict(tie_word_embeddings=True, embedding_multiplier=12.0, residual_multiplier=0.22,
                                            attention_multiplier=0.0078125, logits_scaling=8.0)),
    # Phi-4-mini-like: rope over half of each head, longrope stretching 16 positions to 64
    "phi3_longrope_partial": ("phi3", dict(tie_word_embeddings=False, partial_rotary_factor=0.5, max_position_embeddings=64,
                                           original_max_position_embeddings=16, pad_token_id=0, bos_token_id=0, eos_token_id=2,
                                           rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0,
                                                            "short_factor": [1.0, 1.5, 2.0, 3.0], "long_factor": [2.0, 4.0, 8.0, 16.0]})),
    # Gemma 2-like: alternating window-of-5 and global layers, soft-caps tight enough to bite
    "gemma2_softcap": ("gemma2", dict(num_hidden_layers=3, head_dim=16, query_pre_attn_scalar=16, sliding_window=5,
                                      attn_logit_softcapping=0.1, final_logit_softcapping=0.5, pad_token_id=0, bos_token_id=0, eos_token_id=2)),
    # Gemma 3-like: sliding and global layers, each kind with its own rope base, linear scaling on the global one
    "gemma3_local_global": ("gemma3", dict(num_hidden_layers=3, head_dim=32, query_pre_attn_scalar=32, sliding_window=5,
                                           layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                                           rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                                                            "full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 1000000.0}},
                                           pad_token_id=0, bos_token_id=0, eos_token_id=2)),
}


def tiny_model(name, seed=0):
    """(transformers model, Kiln definition) of a tiny config; biases and norm gains random
    (transformers starts them at 0 and 1)."""
    family, extra = CONFIGS[name]
    config_class, model_class, kiln = FAMILIES[family]
    torch.manual_seed(seed)
    model = model_class(config_class(**(BASE | extra))).eval()
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if param_name.endswith(".bias") or param_name.endswith("norm.weight"):
                param.normal_(1.0 if param_name.endswith("norm.weight") else 0.0, 0.5)
    return model, kiln
