//! Kernels that read weights in their stored format (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) compute what
//! the same weights converted to f32 at compile time compute, on every vector width (AVX-512,
//! AVX2, SSE without F16C). The tiny fixture's weights are re-encoded into each format here;
//! conversion to f32 is the importer's (gguf/blocks.rs, checked against transformers through the
//! SmolLM2 test and its unit tests).
use std::path::Path;

use compiler::compile::Options;
use compiler::storage::WeightMode;
use kiln_tests::reencode::{compile_with, random_k_quant, reencoded, FORMATS};
use kiln_tests::*;

/// Logits of a prefill and three decode steps.
fn logits(artifact: &Path) -> Vec<f32> {
    let mut model = runtime::Model::open(artifact, Some(32)).unwrap();
    let prompt: Vec<u32> = (20..33).collect();
    let mut out = model.forward(&prompt, 0, true).unwrap();
    for (i, t) in [40u32, 41, 42].into_iter().enumerate() {
        out.extend(model.forward(&[t], prompt.len() + i, false).unwrap());
    }
    out
}

#[test]
fn every_format_matches_its_f32_conversion_on_every_vector_width() {
    let dir = tempfile::tempdir().unwrap();
    for (_, dtype) in FORMATS {
        for target in ["host", "x86-64-v3", "x86-64"] {
            let source = reencoded("llama_tied_gqa", dtype);
            // exact: f32 activations, as the f32 conversion's kernels have (dot_matmul.rs tests the other path)
            let build = |weights: WeightMode, file: &str| compile_with(&source, &dir.path().join(file), &Options { target_cpu: target.into(), weights, exact: true, ..Default::default() });
            let native = build(WeightMode::Native, "native.kiln");
            let meta = runtime::artifact::Artifact::open(&native, false).unwrap().meta;
            let stored: Vec<&str> = meta.tensors.iter().map(|t| t.dtype.as_str()).collect();
            assert!(stored.contains(&dtype), "{dtype} kept in the artifact: {stored:?}");
            let err = max_rel_err(&logits(&native), &logits(&build(WeightMode::F32, "f32.kiln")));
            assert!(err < 2e-5, "{dtype} on {target}: logits differ from the f32 conversion by {err}");
        }
    }
}

/// Q2_K, Q3_K, Q4_K, Q5_K and Q6_K through a whole model (random super-blocks, rows of 256) on every
/// vector width: the kernels reading them give the logits of the same weights as f32.
#[test]
fn k_quants_match_their_f32_conversion_on_every_vector_width() {
    let dir = tempfile::tempdir().unwrap();
    for dtype in ["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"] {
        let source = random_k_quant(dtype);
        for target in ["host", "x86-64-v3", "x86-64"] {
            // exact: f32 activations, as the f32 conversion's kernels have (dot_matmul.rs tests the other path)
            let build = |weights: WeightMode, file: &str| compile_with(&source, &dir.path().join(file), &Options { target_cpu: target.into(), weights, exact: true, ..Default::default() });
            let native = build(WeightMode::Native, "native.kiln");
            let meta = runtime::artifact::Artifact::open(&native, false).unwrap().meta;
            assert!(meta.tensors.iter().filter(|t| t.dtype == dtype).count() >= 15, "{dtype} kept in the artifact");
            let (got, want) = (logits(&native), logits(&build(WeightMode::F32, "f32.kiln")));
            assert!(want.iter().all(|x| x.is_finite()) && want.iter().any(|&x| x != want[0]), "{dtype}: logits must be finite and vary");
            let err = max_rel_err(&got, &want);
            assert!(err < 2e-5, "{dtype} on {target}: logits differ from the f32 conversion by {err}");
        }
    }
}
