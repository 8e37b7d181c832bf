//! MLX-quantised folders (tests/fixtures/mlx, made by python-trace/make_mlx_fixtures.py with
//! `mlx_lm.convert`): bits 2–8, groups of 32/64/128, f32/f16/bf16 scales, per-module bits,
//! quantised embeddings and tied heads, fused projections. Each packed format dequantises as
//! `mx.dequantize` does; each model's logits equal transformers' on the dequantised weights
//! (mlx_lm's own models ignore sliding windows); the kernels reading the packed groups compute
//! what the same weights as f32 compute, on every vector width.
use std::path::{Path, PathBuf};

use compiler::compile::Options;
use compiler::storage::WeightMode;
use kiln_tests::reencode::compile_with;
use kiln_tests::*;

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixture("mlx")).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    assert!(cases.len() >= 7, "MLX fixtures present");
    cases
}

fn name(case: &Path) -> String {
    case.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn packed_groups_dequantise_as_mlx_does() {
    for case in cases() {
        let source = compiler::load_model(&case).unwrap();
        let want = std::fs::read(case.join("dequantized.safetensors")).unwrap();
        let want = safetensors::SafeTensors::deserialize(&want).unwrap();
        for (tensor, view) in want.tensors() {
            let want: Vec<f32> = view.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
            let info = &source.weights.tensors()[&tensor];
            assert!(info.dtype.starts_with("MLX"), "{}: {tensor} read as {}", name(&case), info.dtype);
            assert_eq!(info.shape, view.shape(), "{}: {tensor}", name(&case));
            let got = source.weights.read_f32(&tensor).unwrap();
            let err = max_rel_err(&got, &want);
            assert!(err < 1e-6, "{}: {tensor} ({}) differs from mx.dequantize by {err}", name(&case), info.dtype);
        }
    }
}

#[test]
fn logits_match_transformers_on_the_dequantised_weights() {
    for case in cases() {
        check_logits(&name(&case), &case, &case.join("reference.json"));
    }
}

#[test]
fn kernels_match_the_f32_conversion_on_every_vector_width() {
    let logits = |artifact: &Path| {
        let mut model = runtime::Model::open(artifact, Some(32)).unwrap();
        let prompt: Vec<u32> = (20..33).collect();
        let mut out = model.forward(&prompt, 0, true).unwrap();
        out.extend(model.forward(&[40], prompt.len(), false).unwrap());
        out
    };
    let check = |case: &Path| {
        let dir = tempfile::tempdir().unwrap();
        let source = compiler::load_model(case).unwrap();
        let build = |target: &str, weights: WeightMode, file: &str| compile_with(&source, &dir.path().join(file), &Options { target_cpu: target.into(), weights, exact: true, ..Default::default() });
        let want = logits(&build("host", WeightMode::F32, "f32.kiln"));
        for target in ["host", "x86-64-v3", "x86-64"] {
            let native = build(target, WeightMode::Native, "native.kiln");
            let meta = runtime::artifact::Artifact::open(&native, false).unwrap().meta;
            assert!(meta.tensors.iter().any(|t| t.dtype.starts_with("MLX")), "{}: packed groups kept in the artifact", name(case));
            let err = max_rel_err(&logits(&native), &want);
            // vector widths sum in different orders, and scale·q + bias rounds once with FMA,
            // twice without; a wrong bit costs ≫ 1e-2
            assert!(err < 1e-4, "{} on {target}: logits differ from the f32 conversion by {err}", name(case));
        }
    };
    let cases = cases();
    std::thread::scope(|s| {
        for half in cases.chunks(cases.len().div_ceil(2)) {
            s.spawn(move || half.iter().for_each(|c| check(c)));
        }
    });
}

fn smollm2_4bit() -> &'static PathBuf {
    static ARTIFACT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ARTIFACT.get_or_init(|| real_model::compiled("SmolLM2-135M-Instruct-mlx-4bit", "smollm2-mlx"))
}

/// SmolLM2 quantised by `mlx_lm.convert` (4 bits, groups of 64; `make smollm2-mlx`): the greedy
/// continuations `mlx_lm.generate` gives on the same folder (python-trace/reference_mlx.py).
#[test]
fn smollm2_4bit_continues_as_mlx_lm_generate() {
    real_model::greedy_continuations_match(smollm2_4bit(), "smollm2_mlx_reference.json");
}

/// The default build (8-bit activations against the 4-bit groups where the CPU has VNNI) keeps
/// the exact path's perplexity within 0.5%.
#[test]
fn smollm2_4bit_integer_dot_products_keep_perplexity() {
    let dir = tempfile::tempdir().unwrap();
    let fast = compile_fast(&root().join("models/SmolLM2-135M-Instruct-mlx-4bit"), dir.path());
    let (exact, fast) = (real_model::perplexity(smollm2_4bit()), real_model::perplexity(&fast));
    eprintln!("perplexity: exact {exact:.4}, default {fast:.4}");
    assert!((fast - exact).abs() / exact < 0.005, "default path perplexity {fast} vs exact {exact}");
}

/// Quantisations Kiln does not read are refused with one line naming them.
#[test]
fn unsupported_quantisation_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, serde_json::Value, &str); 4] = [
        ("mode", "mxfp4".into(), "MLX quantization mode 'mxfp4' is not supported"),
        ("bits", 7.into(), "7 bits, group size 32"),
        ("group_size", 16.into(), "4 bits, group size 16"),
        ("bits", 8.into(), "do not match 8-bit groups of 32"),
    ];
    for (i, (key, value, expected)) in cases.into_iter().enumerate() {
        let folder = copy_fixture("mlx/llama_tied_gqa_4bit_g32", dir.path(), &format!("case{i}"));
        let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(folder.join("config.json")).unwrap()).unwrap();
        config["quantization"][key] = value;
        std::fs::write(folder.join("config.json"), config.to_string()).unwrap();
        let err = compiler::load_model(&folder).err().expect("refused").to_string();
        assert!(err.contains(expected) && !err.contains('\n'), "{key}: {err}");
    }
    let folder = copy_fixture("mlx/llama_tied_gqa_4bit_g32", dir.path(), "no_config");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(folder.join("config.json")).unwrap()).unwrap();
    config.as_object_mut().unwrap().remove("quantization");
    std::fs::write(folder.join("config.json"), config.to_string()).unwrap();
    let err = compiler::load_model(&folder).err().expect("refused").to_string();
    assert!(err.contains("packed (U32) but config.json has no MLX `quantization` entry"), "{err}");
}
