//! The real default model, SmolLM2-135M-Instruct (Q4_1 GGUF, `make model`), against the
//! transformers reference in tests/fixtures/smollm2_reference.json (python-trace/reference_gguf.py).
use std::path::PathBuf;
use std::sync::OnceLock;

use kiln_tests::*;
use runtime::tokenizer::Tokenizer;

fn artifact() -> &'static PathBuf {
    static ARTIFACT: OnceLock<PathBuf> = OnceLock::new();
    ARTIFACT.get_or_init(|| real_model::compiled("SmolLM2-135M-Instruct.Q4_1.gguf", "model"))
}

#[test]
fn greedy_continuations_match_transformers() {
    real_model::greedy_continuations_match(artifact(), "smollm2_reference.json");
}

#[test]
fn tokenizer_from_gguf_matches_transformers_and_round_trips() {
    real_model::tokenizer_matches(artifact(), "smollm2_reference.json");
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
