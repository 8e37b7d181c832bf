//! Tiny random models of each family (tests/fixtures, made by python-trace/make_fixtures.py):
//! compiled through the whole pipeline, logits equal to transformers' at every position of a
//! prefill and at each decode step after it; and the same weights as GGUF files written the way
//! llama.cpp writes them (python-trace/make_gguf_fixtures.py), for the families GGUF names.
use kiln_tests::*;
use serde_json::Value;

fn check(name: &str) {
    check_model(name, &fixture(name));
}

/// The model at `model` (fixture `name`, or the same weights in another file) against `name`'s reference.
fn check_model(name: &str, model: &std::path::Path) {
    check_logits(name, model, &fixture(name).join("reference.json"));
}

#[test]
fn tied_gqa_matches_transformers() {
    check("llama_tied_gqa");
}

#[test]
fn untied_llama3_rope_sharded_matches_transformers() {
    check("llama_untied_llama3_rope");
}

#[test]
fn qwen2_biases_sharded_matches_transformers() {
    check("qwen2_untied_bias");
}

/// A window of 5 positions: the 8-token prefill and the decode steps after it go past it.
#[test]
fn mistral_sliding_window_matches_transformers() {
    check("mistral_sliding_window");
}

/// Embedding, residual and attention multipliers and logit scaling, none of them 1.
#[test]
fn granite_multipliers_match_transformers() {
    check("granite_multipliers");
}

/// Per-head q/k norms with random gains.
#[test]
fn qwen3_qk_norm_matches_transformers() {
    check("qwen3_qk_norm");
}

/// GGUF metadata, llama.cpp tensor names, Llama's permuted Q/K rows and Llama 3 rope divisors as a
/// tensor, Qwen2's biases, Qwen3's q/k norms, Granite's multipliers, Phi-3's fused tensors, Gemma's
/// 1 + w norm gains, soft-caps, per-layer window flags and global rope scaling: each family's GGUF
/// gives transformers' logits for its weights.
#[test]
fn gguf_files_of_each_family_match_transformers() {
    for name in ["llama_tied_gqa", "llama_untied_llama3_rope", "qwen2_untied_bias", "qwen3_qk_norm", "granite_multipliers", "phi3_fused_qkv", "phi3_longrope_partial", "gemma2_softcap", "gemma3_local_global"] {
        check_model(name, &fixture("gguf").join(format!("{name}.gguf")));
    }
}

/// q, k, v and gate, up as row ranges of fused weights; a window of 6.
#[test]
fn phi3_fused_projections_match_transformers() {
    check("phi3_fused_qkv");
}

/// Rope over half of each head; longrope's short factors and attention factor (a context of 64
/// stretched from 16).
#[test]
fn phi3_longrope_partial_rotary_matches_transformers() {
    check("phi3_longrope_partial");
}

/// (1 + w) norms before and after attention and MLP, sqrt(hidden) embedding scale, GELU-tanh,
/// query_pre_attn_scalar, soft-capped scores and logits, window-of-5 layers between global ones.
#[test]
fn gemma2_softcaps_and_local_global_layers_match_transformers() {
    check("gemma2_softcap");
}

/// Per-head (1 + w) q/k norms; sliding and global layers from `layer_types`, each kind with its own
/// rope base, linear scaling on the global one.
#[test]
fn gemma3_local_global_rope_matches_transformers() {
    check("gemma3_local_global");
}

/// `--quant` on a float fixture: each format's logits stay near transformers' (BF16 within 2%,
/// Q8_0 within 4%, Q4_0 within 40% of the largest logit: tiny random weights quantise coarsely;
/// measured 0.4%, 1.3%, 15%), and the artifact stores that format.
#[test]
fn quantised_fixture_stays_near_transformers() {
    use compiler::lower::weight_format::WeightFormat;
    let name = "llama_untied_llama3_rope";
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(fixture(name).join("reference.json")).unwrap()).unwrap();
    let want: Vec<f32> = reference["prefill"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32)).collect();
    let prompt: Vec<u32> = reference["prompt"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
    let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
    let source = compiler::load_model(&fixture(name)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (format, tolerance) in [(WeightFormat::Q8_0, 0.04), (WeightFormat::BF16, 0.02), (WeightFormat::Q4_0, 0.4)] {
        let out = dir.path().join(format!("{}.kiln", format.name()));
        kiln_tests::reencode::compile_with(&source, &out, &compiler::compile::Options { quant: Some(format), ..Default::default() });
        let mut model = runtime::Model::open(&out, Some(64)).unwrap();
        assert!(model.artifact.meta.tensors.iter().filter(|t| t.dtype.trim_end_matches("x16") == format.name()).count() >= 14, "{} stored", format.name());
        let got = model.forward(&prompt, 0, true).unwrap();
        let err = max_abs_err(&got, &want) / scale;
        assert!(err > 0.0 && err < tolerance, "{}: logits differ by {err} of the largest", format.name());
    }
}
