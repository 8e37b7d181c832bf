//! The everyday commands on a tiny model, as a user runs them: template, prompt, tokenize,
//! detokenize, chat, run's options, info, and models named from the Hugging Face cache.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::OnceLock;

use kiln_tests::*;
use serde_json::Value;

fn tiny() -> &'static PathBuf {
    static ART: OnceLock<PathBuf> = OnceLock::new();
    ART.get_or_init(|| compile(&fixture("llama_tied_gqa"), &test_dir("commands")))
}

fn kiln_with(args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = kiln();
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(out: Output) -> (String, String) {
    let (o, e) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert!(out.status.success(), "failed: {e}");
    (o, e)
}

fn write_json(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn template_renders_exactly_with_fixed_time_and_vars() {
    let dir = tempfile::tempdir().unwrap();
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(fixture("chat-templates/expected.json")).unwrap()).unwrap();
    let conv = write_json(dir.path(), "conv.json", &expected["cases"]["system_user"]["messages"]);
    let template = fixture("chat-templates/templates/meta-llama-Llama-3.2-3B-Instruct.jinja");
    let args = ["template", template.to_str().unwrap(), "--messages", &conv, "--now", "2026-01-15T09:30:00", "--var", "bos_token=<BOS>"];
    let (text, _) = ok(kiln_with(&args, "", &[]));
    assert_eq!(text, expected["expected"]["meta-llama-Llama-3.2-3B-Instruct"]["system_user"]["text"].as_str().unwrap(), "byte for byte, no newline added");

    // tools from a file, and no generation prompt
    let tools = write_json(dir.path(), "tools.json", &expected["cases"]["tools"]["tools"]);
    let conv = write_json(dir.path(), "user.json", &expected["cases"]["tools"]["messages"]);
    let (with_tools, _) = ok(kiln_with(&[&args[..2], &["--messages", &conv, "--tools", &tools, "--now", "2026-01-15T09:30:00", "--var", "bos_token=<BOS>"]].concat(), "", &[]));
    assert_eq!(with_tools, expected["expected"]["meta-llama-Llama-3.2-3B-Instruct"]["tools"]["text"].as_str().unwrap());
    let (no_gen, _) = ok(kiln_with(&[&args[..], &["--no-generation-prompt"]].concat(), "", &[]));
    assert!(text.starts_with(&no_gen) && !no_gen.ends_with("assistant<|end_header_id|>\n\n"));

    let raising = dir.path().join("raise.jinja");
    std::fs::write(&raising, "{{ raise_exception('Only user and assistant roles are supported!') }}").unwrap();
    let out = kiln_with(&["template", raising.to_str().unwrap(), "--messages", &conv], "", &[]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("Only user and assistant roles are supported!"));
}

#[test]
fn prompt_shows_the_text_and_ids_a_model_receives() {
    let dir = tempfile::tempdir().unwrap();
    let conv = write_json(dir.path(), "conv.json", &serde_json::json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "more"}]));
    let a = tiny().to_str().unwrap();
    let (text, _) = ok(kiln_with(&["prompt", a, "--messages", &conv], "", &[]));
    assert_eq!(text, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n<|im_start|>user\nmore<|im_end|>\n<|im_start|>assistant\n");
    let (ids, _) = ok(kiln_with(&["prompt", a, "--messages", &conv, "--ids"], "", &[]));
    let (tokenized, _) = ok(kiln_with(&["tokenize", a, "--ids"], &text, &[]));
    assert_eq!(ids, tokenized);
    let (back, _) = ok(kiln_with(&["detokenize", a], &ids, &[]));
    assert_eq!(back, text);
    let (pieces, _) = ok(kiln_with(&["tokenize", a, "hi there"], "", &[]));
    assert!(pieces.lines().count() >= 2 && pieces.contains(" \"h\"") && pieces.contains(" \" the\""), "{pieces}");
    // the tokenizer of a model folder, before compiling
    let (folder_ids, _) = ok(kiln_with(&["tokenize", fixture("llama_tied_gqa").to_str().unwrap(), "--ids"], &text, &[]));
    assert_eq!(folder_ids, ids);
}

#[test]
fn chat_keeps_the_cache_between_turns_and_obeys_commands() {
    let a = tiny().to_str().unwrap();
    let input = "hello\n/stats\n\"\"\"how\n\nare you\"\"\"\n/system be brief\nhi\n/reset\nhi\n/frobnicate\n/exit\nnever sent\n";
    let (out, err) = ok(kiln_with(&["chat", a, "--max-tokens", "4", "-v"], input, &[]));
    let summaries: Vec<&str> = err.lines().filter(|l| l.starts_with("prompt ")).collect();
    assert_eq!(summaries.len(), 4, "four answers (nothing after /exit): {err}");
    let cached = |l: &str| l.split('(').nth(1).unwrap().split(' ').next().unwrap().parse::<usize>().unwrap();
    assert_eq!(cached(summaries[0]), 0);
    assert!(cached(summaries[1]) > 5, "the second turn reuses the first: {}", summaries[1]);
    assert_eq!(cached(summaries[2]), 0, "/system starts over");
    assert!(err.contains("tokens cached") && err.contains("[new conversation]") && err.contains("unknown command /frobnicate"), "{err}");
    assert!(!out.is_empty());

    // a small context: old turns slide out instead of failing
    let long_chat = "sea story\n".repeat(8);
    let (_, err) = ok(kiln_with(&["chat", a, "--max-tokens", "8", "--ctx", "64"], &long_chat, &[]));
    assert!(err.contains("slid out"), "{err}");
    // a message that cannot fit at all is refused, and the chat goes on
    let (_, err) = ok(kiln_with(&["chat", a, "--ctx", "24", "--max-tokens", "4"], &format!("{}\nhi\n", "word ".repeat(40)), &[]));
    assert!(err.contains("context holds 24"), "{err}");
}

#[test]
fn run_options_environment_and_generation_config() {
    let a = tiny().to_str().unwrap();
    let run = |extra: &[&str], env: &[(&str, &str)]| ok(kiln_with(&[&["run", a, "--no-chat", "-v", "The quick"], extra].concat(), "", env));
    let (greedy, _) = run(&["--max-tokens", "12"], &[]);
    let (_, err) = run(&[], &[("TOKENS", "3"), ("TEMP", "0.5"), ("TOP_K", "7"), ("TOP_P", "0.9")]);
    assert!(err.contains("temperature 0.5, top-k 7, top-p 0.9") && err.contains("(3 tokens)"), "{err}");
    let (_, err) = run(&["--temperature", "0.7", "--min-p", "0.1", "--repeat-penalty", "1.3", "--seed", "9"], &[("TEMP", "0.5")]);
    assert!(err.contains("temperature 0.7, top-k 0, top-p 1, min-p 0.1, repeat-penalty 1.3, seed 9"), "flags beat the environment: {err}");
    let (_, err) = run(&["--max-tokens", "3", "--profile"], &[]);
    assert!(err.contains("share") && err.contains("matmul lm_head") && err.contains("attention"), "{err}");
    // a stop string cuts the greedy text where it first appears
    let cut = greedy.char_indices().nth(greedy.chars().count() / 2).unwrap().0;
    let stop: String = greedy[cut..].chars().take(2).collect();
    let (stopped, _) = run(&["--max-tokens", "12", "--stop", &stop, "--stop", "never-there"], &[]);
    assert_eq!(stopped, greedy[..greedy.find(&stop).unwrap()]);
    // prompt from a file and from standard input
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.txt"), "The quick").unwrap();
    let (from_file, _) = ok(kiln_with(&["run", a, "--no-chat", "--max-tokens", "12", "--file", dir.path().join("p.txt").to_str().unwrap()], "", &[]));
    let (from_stdin, _) = ok(kiln_with(&["run", a, "--no-chat", "--max-tokens", "12"], "The quick", &[]));
    assert_eq!((from_file.as_str(), from_stdin.as_str()), (greedy.as_str(), greedy.as_str()));

    // generation_config.json defaults reach the artifact and apply when no flag is given
    let model = copy_fixture("llama_tied_gqa", dir.path(), "model");
    std::fs::write(model.join("generation_config.json"), r#"{"temperature": 0.6, "top_k": 20, "top_p": 0.95, "repetition_penalty": 1.1}"#).unwrap();
    let art = compile(&model, dir.path());
    let (_, err) = ok(kiln_with(&["run", art.to_str().unwrap(), "-v", "--max-tokens", "2", "hi"], "", &[]));
    assert!(err.contains("temperature 0.6, top-k 20, top-p 0.95, min-p 0, repeat-penalty 1.1"), "{err}");
}

#[test]
fn named_templates_tool_use_when_tools_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_fixture("llama_tied_gqa", dir.path(), "named");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(model.join("tokenizer_config.json")).unwrap()).unwrap();
    config["chat_template"] = serde_json::json!([
        {"name": "default", "template": "D:{{ messages[0].content }}{{ bos_token }}"},
        {"name": "tool_use", "template": "T:{{ tools|length }}:{{ tools[0].function.name }}"}
    ]);
    std::fs::write(model.join("tokenizer_config.json"), config.to_string()).unwrap();
    let art = compile(&model, dir.path());
    let a = art.to_str().unwrap();
    let conv = write_json(dir.path(), "c.json", &serde_json::json!([{"role": "user", "content": "hi"}]));
    let tools = write_json(dir.path(), "t.json", &serde_json::json!([{"type": "function", "function": {"name": "get_time"}}]));
    assert_eq!(ok(kiln_with(&["prompt", a, "--messages", &conv], "", &[])).0, "D:hi<|endoftext|>");
    assert_eq!(ok(kiln_with(&["prompt", a, "--messages", &conv, "--tools", &tools], "", &[])).0, "T:1:get_time");
}

#[test]
fn thinking_is_passed_to_the_template_and_hidden_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_fixture("llama_tied_gqa", dir.path(), "thinker");
    // a template that opens the thinking block itself unless thinking is off
    std::fs::write(model.join("chat_template.jinja"), "{% for m in messages %}{{ m.content }}{% endfor %}{% if enable_thinking is false %}</think>{% else %}<think>{% endif %}").unwrap();
    let art = compile(&model, dir.path());
    let a = art.to_str().unwrap();
    let conv = write_json(dir.path(), "c.json", &serde_json::json!([{"role": "user", "content": "hi"}]));
    let (on, _) = ok(kiln_with(&["prompt", a, "--messages", &conv], "", &[]));
    let (off, _) = ok(kiln_with(&["prompt", a, "--messages", &conv, "--var", "enable_thinking=false"], "", &[]));
    assert_eq!((on.as_str(), off.as_str()), ("hi<think>", "hi</think>"));
    // the model's output after "<think>" is thinking: shown plainly when piped, dropped when hidden
    let (shown, _) = ok(kiln_with(&["run", a, "--max-tokens", "6", "hi"], "", &[]));
    let (hidden, _) = ok(kiln_with(&["run", a, "--max-tokens", "6", "--hide-thinking", "hi"], "", &[]));
    assert!(shown.starts_with("<think>") && hidden.is_empty(), "{shown:?} {hidden:?}");
    // --thinking off reaches the template as enable_thinking=false
    let (off_run, _) = ok(kiln_with(&["run", a, "--max-tokens", "6", "--thinking", "off", "hi"], "", &[]));
    let (raw, _) = ok(kiln_with(&["run", a, "--max-tokens", "6", "--no-chat", "hi</think>"], "", &[]));
    assert_eq!(off_run, raw);
    let (var_run, _) = ok(kiln_with(&["run", a, "--max-tokens", "6", "--var", "enable_thinking=false", "hi"], "", &[]));
    assert_eq!(var_run, raw);
    assert_ne!(off_run, shown);
}

#[test]
fn info_reports_text_json_and_dot() {
    let a = tiny().to_str().unwrap();
    let (text, _) = ok(kiln_with(&["info", a], "", &[]));
    for needle in ["artifact", "parameters", "weights read", "decode FLOPs", "kv cache", "decode roofline", "GB/s", "fused graph", "matmul"] {
        assert!(text.contains(needle), "'{needle}' missing:\n{text}");
    }
    let (json, _) = ok(kiln_with(&["info", a, "--json"], "", &[]));
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["architecture"], "llama");
    assert!(report["weight_bytes_per_token"].as_u64().unwrap() > 0);
    let (dot, _) = ok(kiln_with(&["info", fixture("llama_tied_gqa").to_str().unwrap(), "--dot", "-"], "", &[]));
    assert!(dot.starts_with("digraph kiln {") && dot.contains("\"tokens\" -> g0;"), "{dot}");
}

#[test]
fn models_are_found_in_the_hugging_face_cache() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("hub/models--kiln-test--tiny/snapshots")).unwrap();
    copy_fixture("llama_tied_gqa", &home.path().join("hub/models--kiln-test--tiny/snapshots"), "0123abcd");
    std::fs::create_dir_all(home.path().join("hub/models--kiln-test--tiny/refs")).unwrap();
    std::fs::write(home.path().join("hub/models--kiln-test--tiny/refs/main"), "0123abcd").unwrap();
    let out = home.path().join("t.kiln");
    let env = [("HF_HOME", home.path().to_str().unwrap())];
    ok(kiln_with(&["compile", "kiln-test/tiny", "-o", out.to_str().unwrap()], "", &env));
    assert!(out.exists());
    let missing = kiln_with(&["compile", "kiln-test/absent", "-o", out.to_str().unwrap()], "", &env);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success() && err.contains("kiln-test/absent: not in the local Hugging Face cache") && err.lines().count() == 1, "{err}");
}
