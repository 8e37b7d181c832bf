//! The real default model, SmolLM2-135M-Instruct (Q4_1 GGUF, `make model`), against the
//! transformers reference in tests/fixtures/smollm2_reference.json (python-trace/reference_smollm2.py).
use std::path::PathBuf;
use std::sync::OnceLock;

use kiln_tests::*;
use runtime::sampler::{Sampler, SamplerConfig};
use runtime::tokenizer::Tokenizer;
use serde_json::Value;

fn artifact() -> &'static PathBuf {
    static ARTIFACT: OnceLock<PathBuf> = OnceLock::new();
    ARTIFACT.get_or_init(|| {
        let gguf = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert!(gguf.exists(), "{} is missing: run `make model`", gguf.display());
        compile(&gguf, &test_dir("smollm2"))
    })
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("smollm2_reference.json")).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

#[test]
fn greedy_continuations_match_transformers() {
    let mut model = runtime::Model::open(artifact(), Some(256)).unwrap();
    for case in reference()["cases"].as_array().unwrap() {
        let prompt = ids(&case["prompt_ids"]);
        let want = ids(&case["tokens"]);
        let margins: Vec<f64> = case["margins"].as_array().unwrap().iter().map(|m| m.as_f64().unwrap()).collect();
        let mut sampler = Sampler::new(SamplerConfig::default());
        let mut logits = model.forward(&prompt, 0, false).unwrap();
        for (i, &expected) in want.iter().enumerate() {
            let got = sampler.sample(&logits, &[]);
            if got != expected {
                // Only a near-tie in the reference may go either way; after it the texts differ.
                assert!(margins[i] < 0.05, "{:?}: token {i} is {got}, transformers chose {expected} (margin {})", case["prompt"], margins[i]);
                break;
            }
            logits = model.forward(&[got], prompt.len() + i, false).unwrap();
        }
    }
}

#[test]
fn tokenizer_from_gguf_matches_transformers_and_round_trips() {
    let model = runtime::Model::open(artifact(), Some(16)).unwrap();
    let meta = &model.artifact.meta;
    let tok = Tokenizer::for_artifact(meta).unwrap();
    let r = reference();
    let text = r["tokenizer"]["text"].as_str().unwrap();
    let got = tok.encode(text).unwrap();
    assert_eq!(got, ids(&r["tokenizer"]["ids"]));
    assert_eq!(tok.decode(&got).unwrap(), text);
    for case in r["cases"].as_array().unwrap() {
        assert_eq!(tok.encode(case["prompt"].as_str().unwrap()).unwrap(), ids(&case["prompt_ids"]));
    }
}

#[test]
fn streamed_text_equals_decoded_text() {
    let model = runtime::Model::open(artifact(), Some(16)).unwrap();
    let meta = &model.artifact.meta;
    let tok = Tokenizer::new(&meta.tokenizer, None, false).unwrap();
    let ids = tok.encode("日本語 🦀 façade").unwrap();
    let mut stream = runtime::tokenizer::StreamDecoder::new();
    let streamed: String = ids.iter().map(|&i| stream.push(&tok, i).unwrap()).collect();
    assert_eq!(streamed, "日本語 🦀 façade");
}

/// `kiln chat` on the real model: the second turn reuses the first turn's cache and answers as a
/// fresh run of the whole rendered conversation would; Ctrl-C stops an answer, not the chat.
#[test]
fn chat_turns_and_ctrl_c() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let a = artifact().to_str().unwrap();
    let out = kiln().args(["chat", a, "--max-tokens", "24", "-v"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut child = out;
    child.stdin.take().unwrap().write_all(b"What is the capital of France?\nAnd of Germany?\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert!(out.status.success(), "{stderr}");
    let answers: Vec<&str> = stdout.lines().collect();
    assert!(answers[0].contains("Paris") && answers[1].contains("Berlin"), "{stdout}");
    assert!(stderr.lines().filter(|l| l.starts_with("prompt ")).nth(1).is_some_and(|l| !l.contains("(0 cached)")), "{stderr}");

    // the same conversation rendered whole and run once gives the same second answer
    let dir = tempfile::tempdir().unwrap();
    let conv = dir.path().join("conv.json");
    let messages = serde_json::json!([
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": answers[0]},
        {"role": "user", "content": "And of Germany?"}
    ]);
    std::fs::write(&conv, messages.to_string()).unwrap();
    let prompt = kiln().args(["prompt", a, "--messages", conv.to_str().unwrap()]).output().unwrap();
    let whole = kiln().args(["run", a, "--no-chat", "--max-tokens", "24", &String::from_utf8(prompt.stdout).unwrap()]).output().unwrap();
    assert_eq!(String::from_utf8(whole.stdout).unwrap(), answers[1]);

    // Ctrl-C during a long answer: "[stopped]", and the chat goes on to the next command
    let mut child = kiln().args(["chat", a, "--max-tokens", "2000", "--ctx", "2048"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"Write a very long story about a dragon who learns to bake bread.\n").unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap(); // the story has begun
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    stdin.write_all(b"/stats\n/exit\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success() && stderr.contains("[stopped]") && stderr.contains("tokens cached"), "{stderr}");
}
