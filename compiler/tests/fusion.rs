//! The fused graph of each family's tiny fixture, pinned whole: which ops fuse into which kernel.
//! Norms and gains sit in the matmuls' prologues; biases (Qwen2), multipliers (Granite) and
//! residual adds in their epilogues; per-head norms (Qwen3) stand alone before rope; Phi-3's
//! fused projections are read as row ranges and fuse like separate ones; Gemma's post-norms,
//! each a whole-row reduction of a matmul's output, fuse with the residual add in one map, and its
//! soft-capped logits and GELU-tanh gating sit in matmul epilogues.
use std::path::Path;

/// (snapshot, fixture)
const FAMILIES: [(&str, &str); 8] = [
    ("llama_fused_groups", "llama_tied_gqa"),
    ("qwen2_fused_groups", "qwen2_untied_bias"),
    ("qwen3_fused_groups", "qwen3_qk_norm"),
    ("mistral_fused_groups", "mistral_sliding_window"),
    ("phi3_fused_groups", "phi3_fused_qkv"),
    ("granite_fused_groups", "granite_multipliers"),
    ("gemma2_fused_groups", "gemma2_softcap"),
    ("gemma3_fused_groups", "gemma3_local_global"),
];

#[test]
fn every_family_fuses_as_pinned() {
    for (snapshot, fixture) in FAMILIES {
        let config_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(fixture).join("config.json");
        let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(config_path).unwrap()).unwrap();
        let c = compiler::compile::analyse(&config).unwrap();
        insta::assert_snapshot!(snapshot, compiler::fuse::describe(&c.graph, &c.groups));
    }
}
