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

/// The float32 Hugging Face folder (`make qwen-hf`).
fn hf_folder() -> PathBuf {
    let folder = root().join("models").join("qwen2.5-coder-0.5b-instruct-hf");
    assert!(folder.exists(), "{} is missing: run `make qwen-hf`", folder.display());
    folder
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
    // Temporary: the float32 artifact is 2.5 GB, too much to leave behind in the target dir.
    let dir = tempfile::tempdir().unwrap();
    let hf = compile(&hf_folder(), dir.path());
    real_model::greedy_continuations_match(&hf, "qwen2_reference.json");
    real_model::tokenizer_matches(&hf, "qwen2_reference.json");
}

/// `--quant q8_0` on the float32 folder: a quarter of the bytes, perplexity within 1% of the
/// unquantised model's on tests/fixtures/perplexity.txt.
#[test]
fn q8_0_quantisation_keeps_perplexity() {
    let folder = hf_folder();
    let source = compiler::load_model(&folder).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let quant = compiler::lower::weight_format::WeightFormat::Q8_0;
    let q8 = kiln_tests::reencode::compile_with(&source, &dir.path().join("q8_0.kiln"), &compiler::compile::Options { quant: Some(quant), kv: runtime::plan::KvDtype::F32, ..Default::default() });
    let f32_bytes: u64 = std::fs::read_dir(&folder).unwrap().map(|f| f.unwrap().path()).filter(|f| f.extension().is_some_and(|e| e == "safetensors")).map(|f| std::fs::metadata(f).unwrap().len()).sum();
    assert!(std::fs::metadata(&q8).unwrap().len() * 3 < f32_bytes, "Q8_0 artifact should be about a quarter of the f32 weights");
    let (exact, quantised) = (real_model::perplexity(artifact()), real_model::perplexity(&q8));
    assert!(((quantised - exact) / exact).abs() < 0.01, "Q8_0 ppl {quantised}, unquantised {exact}");
}

/// The default build (8-bit activations against the Q5_0 and Q8_0 blocks where the CPU has VNNI)
/// keeps the exact path's perplexity within 0.5%.
#[test]
fn integer_dot_products_keep_perplexity() {
    let dir = tempfile::tempdir().unwrap();
    let fast = compile_fast(&root().join("models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"), dir.path());
    let (exact, fast) = (real_model::perplexity(artifact()), real_model::perplexity(&fast));
    eprintln!("perplexity: exact {exact:.4}, default {fast:.4}");
    assert!(((fast - exact) / exact).abs() < 0.005, "default path perplexity {fast} vs exact {exact}");
}
