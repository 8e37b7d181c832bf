//! Helpers for Kiln's end-to-end tests: fixture paths, compiling into a temp dir, the CLI binary.
use std::path::{Path, PathBuf};

pub mod readers;
pub mod real_model;
pub mod reencode;
pub mod server;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// A copy of fixture `name` in `dir/as_name`, to alter.
pub fn copy_fixture(name: &str, dir: &Path, as_name: &str) -> PathBuf {
    let d = dir.join(as_name);
    std::fs::create_dir(&d).unwrap();
    for f in std::fs::read_dir(fixture(name)).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, d.join(f.file_name().unwrap())).unwrap();
    }
    d
}

/// A folder in cargo's target dir for artifacts a whole test binary shares: reused (not piled
/// up) from run to run, removed by `cargo clean`.
pub fn test_dir(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("test-artifacts").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles a model into `dir/model.kiln` as `kiln compile --exact` does (an f32 KV cache, f32
/// matmul activations), for comparisons with float32 references.
pub fn compile(model: &Path, dir: &Path) -> PathBuf {
    compile_using(model, dir, &compiler::compile::Options { kv: runtime::plan::KvDtype::F32, exact: true, ..Default::default() })
}

/// Compiles a model into `dir/model.kiln` as `kiln compile` does by default (f16 KV cache, 8-bit
/// activations where the CPU has integer dot products).
pub fn compile_fast(model: &Path, dir: &Path) -> PathBuf {
    compile_using(model, dir, &Default::default())
}

/// Compiles a model into `dir/model.kiln` with `options`.
pub fn compile_using(model: &Path, dir: &Path, options: &compiler::compile::Options) -> PathBuf {
    let out = dir.join("model.kiln");
    let source = compiler::load_model(model).unwrap();
    compiler::compile::compile(&source, &out, options, &mut |_| {}).unwrap();
    out
}

/// The `kiln` binary cargo built next to this test.
pub fn kiln() -> std::process::Command {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    std::process::Command::new(dir.join("kiln"))
}

/// max |a - b| over all elements; a NaN on either side is an infinite error
pub fn max_abs_err(a: &[f32], b: &[f32]) -> f32 {
    worst_err(a, b, |_| 1.0)
}

/// max |a - b| / max(1, |b|) over all elements; a NaN on either side is an infinite error
pub fn max_rel_err(a: &[f32], b: &[f32]) -> f32 {
    worst_err(a, b, |y| y.abs().max(1.0))
}

/// max |a - b| / scale(b), a NaN counted as infinite (f32::max alone would skip it).
fn worst_err(a: &[f32], b: &[f32], scale: impl Fn(f32) -> f32) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / scale(*y)).map(|e| if e.is_nan() { f32::INFINITY } else { e }).fold(0.0, f32::max)
}

/// Compiles `model` (exact path) and checks its logits against `reference` (a reference.json of
/// tests/fixtures: the prompt, logits at every prefill position, then greedy decode steps) within
/// 1e-4 relative; `name` labels the messages.
pub fn check_logits(name: &str, model: &Path, reference: &Path) {
    use serde_json::Value;
    let dir = tempfile::tempdir().unwrap();
    let artifact = compile(model, dir.path());
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(reference).unwrap()).unwrap();
    let floats = |v: &Value| -> Vec<f32> { v.as_array().unwrap().iter().flat_map(|r| r.as_array().map(|a| a.to_vec()).unwrap_or_else(|| vec![r.clone()])).map(|x| x.as_f64().unwrap() as f32).collect() };
    let prompt: Vec<u32> = reference["prompt"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();

    let mut model = runtime::Model::open(&artifact, Some(64)).unwrap();
    let logits = model.forward(&prompt, 0, true).unwrap();
    let err = max_rel_err(&logits, &floats(&reference["prefill"]));
    assert!(err < 1e-4, "{name}: prefill logits differ by {err}");
    eprintln!("{name}: prefill max rel err {err:e}");

    let mut pos = prompt.len();
    for (i, step) in reference["decode"].as_array().unwrap().iter().enumerate() {
        let token = step["token"].as_u64().unwrap() as u32;
        let logits = model.forward(&[token], pos, false).unwrap();
        let err = max_rel_err(&logits, &floats(&step["logits"]));
        assert!(err < 1e-4, "{name}: decode step {i} logits differ by {err}");
        pos += 1;
    }
}
