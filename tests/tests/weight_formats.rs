//! Kernels that read weights in their stored format (F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) compute what
//! the same weights converted to f32 at compile time compute, on every vector width (AVX-512,
//! AVX2, SSE without F16C). The tiny fixture's weights are re-encoded into each format here;
//! conversion to f32 is the importer's (gguf/blocks.rs, checked against transformers through the
//! SmolLM2 test and its unit tests).
use std::path::Path;

use compiler::compile::Options;
use compiler::storage::WeightMode;
use kiln_tests::reencode::{compile_with, reencoded, FORMATS};
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
            let build = |weights: WeightMode, file: &str| compile_with(&source, &dir.path().join(file), &Options { target_cpu: target.into(), weights, ..Default::default() });
            let native = build(WeightMode::Native, "native.kiln");
            let meta = runtime::artifact::Artifact::open(&native, false).unwrap().meta;
            let stored: Vec<&str> = meta.tensors.iter().map(|t| t.dtype.as_str()).collect();
            assert!(stored.contains(&dtype), "{dtype} kept in the artifact: {stored:?}");
            let err = max_rel_err(&logits(&native), &logits(&build(WeightMode::F32, "f32.kiln")));
            assert!(err < 2e-5, "{dtype} on {target}: logits differ from the f32 conversion by {err}");
        }
    }
}
