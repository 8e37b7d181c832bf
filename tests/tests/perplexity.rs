//! `kiln perplexity` against transformers' float32 computation of the same definition
//! (tests/fixtures/perplexity.json, python-trace/reference_perplexity.py): a tiny fixture within
//! 1e-4, the default model within 0.5% (exact and default paths; Kiln's definition and
//! llama-perplexity's); the command's output and its errors.
use kiln_tests::*;
use serde_json::Value;

/// (ctx, ppl) of transformers' computation under `mode`: "kiln" or "llama_cpp".
fn reference_in(model: &str, mode: &str) -> (usize, f64) {
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(fixture("perplexity.json")).unwrap()).unwrap();
    let case = fixture["cases"].as_array().unwrap().iter().find(|c| c["model"] == model && c["mode"] == mode).unwrap();
    (case["ctx"].as_u64().unwrap() as usize, case["ppl"].as_f64().unwrap())
}

fn reference(model: &str) -> (usize, f64) {
    reference_in(model, "kiln")
}

fn kiln_perplexity(artifact: &std::path::Path, ctx: usize, batch: usize) -> f64 {
    kiln_perplexity_with(artifact, ctx, batch, &[], true)
}

fn kiln_perplexity_with(artifact: &std::path::Path, ctx: usize, batch: usize, extra: &[&str], amx: bool) -> f64 {
    kiln_perplexity_of(artifact, &fixture("perplexity.txt"), ctx, batch, extra, amx)
}

fn kiln_perplexity_of(artifact: &std::path::Path, text: &std::path::Path, ctx: usize, batch: usize, extra: &[&str], amx: bool) -> f64 {
    let out = kiln().env("KILN_AMX", if amx { "1" } else { "0" }).args(["perplexity", artifact.to_str().unwrap(), text.to_str().unwrap()])
        .args(["--ctx", &ctx.to_string(), "--batch", &batch.to_string()]).args(extra).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.trim().lines().last().unwrap();
    let value = last.strip_prefix("ppl = ").unwrap_or_else(|| panic!("last line: {last}"));
    value.split(" ± ").next().unwrap().parse().unwrap()
}

#[test]
fn tiny_model_matches_transformers_in_any_batch() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = compile(&fixture("llama_tied_gqa"), dir.path());
    let (ctx, want) = reference("llama_tied_gqa");
    for batch in [ctx, 7] {
        let got = kiln_perplexity(&artifact, ctx, batch);
        assert!(((got - want) / want).abs() < 1e-4, "batch {batch}: ppl {got}, transformers {want}");
    }
}

#[test]
fn default_model_matches_transformers() {
    let artifact = kiln_tests::real_model::compiled("SmolLM2-135M-Instruct.Q4_1.gguf", "model");
    let (ctx, want) = reference("smollm2");
    let got = kiln_perplexity(&artifact, ctx, 64);
    assert!(((got - want) / want).abs() < 0.005, "ppl {got}, transformers {want}");
}

/// `--llama-cpp` scores as llama-perplexity does (BOS first, the second half of each window):
/// transformers' computation of that definition, within 1e-4 (tiny) and 0.5% (default model).
#[test]
fn llama_cpp_mode_matches_transformers() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = compile(&fixture("llama_tied_gqa"), dir.path());
    let smollm2 = kiln_tests::real_model::compiled("SmolLM2-135M-Instruct.Q4_1.gguf", "model");
    for (artifact, model, tolerance) in [(&tiny, "llama_tied_gqa", 1e-4), (&smollm2, "smollm2", 0.005)] {
        let (ctx, want) = reference_in(model, "llama_cpp");
        let got = kiln_perplexity_with(artifact, ctx, 64, &["--llama-cpp"], true);
        assert!(((got - want) / want).abs() < tolerance, "{model}: ppl {got}, transformers {want}");
        assert_ne!(got, reference(model).1, "a different definition gives a different value");
    }
}

/// The default compile (f16 KV cache; 8-bit activations in integer dot products where the CPU
/// has them, bf16 AMX tiles for matmul passes of 64 rows and more and attention tiles of 16 rows
/// where granted) scores the default model within 0.5% of the exact path (itself checked against
/// transformers above). On a long text (~6,000 tokens of an old copy of this README): on the
/// 537-token fixture the fast path's rounding moves the value by up to ~1% either way.
#[test]
fn default_fast_path_keeps_the_perplexity() {
    let model = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let dir = tempfile::tempdir().unwrap();
    let (exact, fast) = (kiln_tests::real_model::compiled("SmolLM2-135M-Instruct.Q4_1.gguf", "model"), compile_fast(&model, dir.path()));
    let text = fixture("perplexity_long.txt");
    let e = kiln_perplexity_of(&exact, &text, 256, 256, &[], true);
    // the AMX path (where granted) and the int8 path with the f32 attention
    for amx in [true, false] {
        let f = kiln_perplexity_of(&fast, &text, 256, 256, &[], amx);
        assert!(((f - e) / e).abs() < 0.005, "fast path (AMX allowed: {amx}) ppl {f}, exact {e}");
        assert_ne!(f, e, "the fast path is in use");
    }
}

/// The default model as BF16 (`--quant bf16` from its float folder): bf16 dot products
/// (activations rounded to bf16: `vdpbf16ps` with AVX512-BF16, FMAs with AVX2) keep the exact
/// path's perplexity.
#[test]
fn bf16_fast_path_keeps_the_perplexity() {
    let model = root().join("models/SmolLM2-135M-Instruct-hf");
    assert!(model.exists(), "run `make smollm2-hf`");
    let dir = tempfile::tempdir().unwrap();
    let bf16 = Some(compiler::lower::weight_format::WeightFormat::BF16);
    let compiled = |exact: bool, sub: &str| compile_using(&model, &dir.path().join(sub), &compiler::compile::Options { quant: bf16, exact, ..Default::default() });
    std::fs::create_dir_all(dir.path().join("e")).unwrap();
    std::fs::create_dir_all(dir.path().join("f")).unwrap();
    let (e, f) = (kiln_perplexity(&compiled(true, "e"), 128, 64), kiln_perplexity(&compiled(false, "f"), 128, 64));
    assert!(((f - e) / e).abs() < 0.005, "bf16 fast path ppl {f}, exact {e}");
}

#[test]
fn bad_requests_get_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = compile(&fixture("llama_tied_gqa"), dir.path());
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "too short").unwrap();
    for (args, needle) in [
        (vec![short.to_str().unwrap(), "--ctx", "64"], "fewer than one window of 64"),
        (vec![fixture("perplexity.txt").to_str().unwrap().to_string().leak(), "--ctx", "1"], "--ctx must be at least 2"),
        (vec!["/no/such/file", "--ctx", "8"], "/no/such/file"),
    ] {
        let out = kiln().arg("perplexity").arg(&artifact).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.trim().lines().count() == 1 && err.starts_with("kiln: ") && err.contains(needle), "{args:?}: {err}");
    }
}
