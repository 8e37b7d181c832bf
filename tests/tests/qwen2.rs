//! A real Qwen2.5 model, Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF: Q4_K, Q5_0, Q6_K and Q8_0
//! blocks, `make qwen-model`), against transformers' float32 run of the same file
//! (tests/fixtures/qwen2_reference.json, python-trace/reference_gguf.py); and the same weights as
//! a Hugging Face folder of float32 safetensors (`make qwen-hf`, python-trace/gguf_to_hf.py).
use std::path::PathBuf;
use std::sync::OnceLock;

use kiln_tests::*;

fn artifact() -> &'static PathBuf {
    static ARTIFACT: OnceLock<PathBuf> = OnceLock::new();
    ARTIFACT.get_or_init(|| real_model::compiled("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "qwen-model"))
}

#[test]
fn greedy_continuations_match_transformers() {
    real_model::greedy_continuations_match(artifact(), "qwen2_reference.json");
}

#[test]
fn tokenizer_from_gguf_matches_transformers_and_round_trips() {
    real_model::tokenizer_matches(artifact(), "qwen2_reference.json");
}

/// The Hugging Face folder transformers writes from the GGUF: the same greedy tokens.
#[test]
fn hugging_face_folder_gives_the_same_greedy_tokens() {
    let artifact = real_model::compiled("qwen2.5-coder-0.5b-instruct-hf", "qwen-hf");
    real_model::greedy_continuations_match(&artifact, "qwen2_reference.json");
    real_model::tokenizer_matches(&artifact, "qwen2_reference.json");
}
