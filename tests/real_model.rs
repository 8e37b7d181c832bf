//! Checks of a real model's artifact against its transformers reference (a fixture made by
//! python-trace/reference_gguf.py from the same GGUF file).
use std::path::{Path, PathBuf};

use runtime::sampler::{Sampler, SamplerConfig};
use runtime::tokenizer::Tokenizer;
use serde_json::Value;

/// `models/NAME` (fetched by `make TARGET`) compiled, into a folder this test binary reuses;
/// once per test binary, however many of its tests ask at the same time.
pub fn compiled(name: &str, make_target: &str) -> PathBuf {
    static DONE: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = done.iter().find(|(n, _)| n == name) {
        return path.clone();
    }
    let model = crate::root().join("models").join(name);
    assert!(model.exists(), "{} is missing: run `make {make_target}`", model.display());
    let path = crate::compile(&model, &crate::test_dir(make_target));
    done.push((name.to_string(), path.clone()));
    path
}

fn reference(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(crate::fixture(name)).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// Greedy continuations of each prompt equal the reference's (transformers in float32, or mlx_lm); a divergence is
/// accepted only where the reference's top-two margin is under 0.05 (a near-tie).
pub fn greedy_continuations_match(artifact: &Path, reference_file: &str) {
    let mut model = runtime::Model::open(artifact, Some(256)).unwrap();
    for case in reference(reference_file)["cases"].as_array().unwrap() {
        let prompt = ids(&case["prompt_ids"]);
        let want = ids(&case["tokens"]);
        let margins: Vec<f64> = case["margins"].as_array().unwrap().iter().map(|m| m.as_f64().unwrap()).collect();
        let mut sampler = Sampler::new(SamplerConfig::default());
        let mut logits = model.forward(&prompt, 0, false).unwrap();
        for (i, &expected) in want.iter().enumerate() {
            let got = sampler.sample(&logits, &[]);
            if got != expected {
                // Only a near-tie in the reference may go either way; after it the texts differ.
                assert!(margins[i] < 0.05, "{:?}: token {i} is {got}, the reference chose {expected} (margin {})", case["prompt"], margins[i]);
                break;
            }
            logits = model.forward(&[got], prompt.len() + i, false).unwrap();
        }
    }
}

/// The tokenizer built from GGUF metadata gives transformers' ids on a varied text and on each
/// prompt, and decodes back to the text.
pub fn tokenizer_matches(artifact: &Path, reference_file: &str) {
    let model = runtime::Model::open(artifact, Some(16)).unwrap();
    let tok = Tokenizer::for_artifact(&model.artifact.meta).unwrap();
    let r = reference(reference_file);
    let text = r["tokenizer"]["text"].as_str().unwrap();
    let got = tok.encode(text).unwrap();
    assert_eq!(got, ids(&r["tokenizer"]["ids"]));
    assert_eq!(tok.decode(&got).unwrap(), text);
    for case in r["cases"].as_array().unwrap() {
        assert_eq!(tok.encode(case["prompt"].as_str().unwrap()).unwrap(), ids(&case["prompt_ids"]));
    }
}

/// The artifact's perplexity on tests/fixtures/perplexity.txt in windows of 128 tokens.
pub fn perplexity(artifact: &Path) -> f64 {
    let text = std::fs::read_to_string(crate::fixture("perplexity.txt")).unwrap();
    let mut model = runtime::Model::open(artifact, Some(128)).unwrap();
    let tokens = Tokenizer::for_artifact(&model.artifact.meta).unwrap().encode_without_bos(&text).unwrap();
    runtime::perplexity::perplexity(&mut model, &tokens, 128, 128, runtime::perplexity::Scoring::AllButFirst, &mut |_, _| {}).unwrap().ppl
}
