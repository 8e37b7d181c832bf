//! The fused graph of a tiny Llama, pinned whole: which ops fuse into which kernel.
use std::path::Path;

#[test]
fn llama_fused_groups() {
    let config_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/llama_tied_gqa/config.json");
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(config_path).unwrap()).unwrap();
    let c = compiler::compile::analyse(&config).unwrap();
    insta::assert_snapshot!(compiler::fuse::describe(&c.graph, &c.groups));
}
