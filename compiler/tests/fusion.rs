//! The fused graph of each family's tiny fixture, pinned whole: which ops fuse into which kernel.
use std::path::Path;

fn fused(fixture: &str) -> String {
    let config_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures").join(fixture).join("config.json");
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(config_path).unwrap()).unwrap();
    let c = compiler::compile::analyse(&config).unwrap();
    compiler::fuse::describe(&c.graph, &c.groups)
}

#[test]
fn llama_fused_groups() {
    insta::assert_snapshot!(fused("llama_tied_gqa"));
}

/// The q/k/v biases land in their matmuls' epilogues.
#[test]
fn qwen2_fused_groups() {
    insta::assert_snapshot!(fused("qwen2_untied_bias"));
}

/// The window is an attribute of attention; the rest fuses as Llama's does.
#[test]
fn mistral_fused_groups() {
    insta::assert_snapshot!(fused("mistral_sliding_window"));
}

/// The residual multipliers land in the o_proj and down_proj epilogues, the embedding multiplier
/// in a map after the gather, the logit scaling in the lm_head's epilogue.
#[test]
fn granite_fused_groups() {
    insta::assert_snapshot!(fused("granite_multipliers"));
}

/// The per-head q/k norms stand alone between the projections and rope.
#[test]
fn qwen3_fused_groups() {
    insta::assert_snapshot!(fused("qwen3_qk_norm"));
}

/// Row ranges of the fused qkv_proj and gate_up_proj fuse as Llama's separate projections do.
#[test]
fn phi3_fused_groups() {
    insta::assert_snapshot!(fused("phi3_fused_qkv"));
}
