//! Compilation is reproducible: the same model compiled twice with the same options gives
//! byte-identical artifacts, so anyone can check an artifact (which holds native code) by
//! compiling it again. Through `kiln compile`, on a tiny fixture and on the real default model.
use std::path::Path;

use kiln_tests::*;

fn compile_twice_and_compare(model: &Path, options: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let build = |name: &str| {
        let out = dir.path().join(name);
        let run = kiln().args(["compile", model.to_str().unwrap(), "-o", out.to_str().unwrap()]).args(options).output().unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        std::fs::read(out).unwrap()
    };
    let (first, second) = (build("first.kiln"), build("second.kiln"));
    let differ = first.iter().zip(&second).position(|(a, b)| a != b);
    assert!(first.len() == second.len() && differ.is_none(), "{} {options:?}: artifacts differ (lengths {} and {}, first difference at byte {differ:?})", model.display(), first.len(), second.len());
}

#[test]
fn the_tiny_model_compiles_to_the_same_bytes() {
    compile_twice_and_compare(&fixture("llama_untied_llama3_rope"), &[]);
    compile_twice_and_compare(&fixture("llama_tied_gqa"), &["--target-cpu", "x86-64-v3", "--weights", "f32"]);
}

#[test]
fn the_default_model_compiles_to_the_same_bytes() {
    let gguf = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(gguf.exists(), "{} is missing: run `make model`", gguf.display());
    compile_twice_and_compare(&gguf, &[]);
}
