"""Tiny random Llama-family configs shared by the Python tests and the Rust fixtures."""
import torch
from transformers import LlamaConfig, LlamaForCausalLM

BASE = dict(vocab_size=272, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5)

CONFIGS = {
    # SmolLM-like: tied embeddings, grouped-query attention
    "llama_tied_gqa": dict(tie_word_embeddings=True),
    # Llama-3-like: untied lm_head, rope scaling, head_dim not hidden/heads, full multi-head
    "llama_untied_llama3_rope": dict(
        tie_word_embeddings=False, num_key_value_heads=4, head_dim=24,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 16}),
}


def tiny_llama(name, seed=0):
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**(BASE | CONFIGS[name]))).eval()
