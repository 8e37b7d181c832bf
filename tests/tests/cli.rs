//! The `kiln` command as a user meets it: real runs, and one-line errors for bad input.
use std::process::Output;

use kiln_tests::*;

fn kiln_args(args: &[&str]) -> Output {
    kiln().args(args).output().expect("kiln binary (cargo builds it with the workspace)")
}

/// Fails with a single `kiln: …` line containing `needle`, and no panic.
fn assert_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success; stderr: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("kiln: ") && err.contains(needle), "'{needle}' not in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn compile_run_info_on_a_tiny_model() {
    let dir = tempfile::tempdir().unwrap();
    let art = dir.path().join("tiny.kiln");
    let out = kiln_args(&["compile", fixture("llama_tied_gqa").to_str().unwrap(), "-o", art.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = kiln_args(&["run", art.to_str().unwrap(), "--no-chat", "--max-tokens", "5", "-v", "The quick brown"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stderr).contains("decode"), "--verbose prints timings");
    let chat = kiln_args(&["run", art.to_str().unwrap(), "--max-tokens", "3", "--temperature", "0.8", "--seed", "1", "hi"]);
    assert!(chat.status.success(), "{}", String::from_utf8_lossy(&chat.stderr));
    let info = kiln_args(&["info", art.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&info.stdout).contains(": llama"));
}

#[test]
fn bad_models_get_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.kiln");
    let o = out.to_str().unwrap();
    assert_error(&kiln_args(&["compile", "/nonexistent/model", "-o", o]), "no such file");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_error(&kiln_args(&["compile", empty.to_str().unwrap(), "-o", o]), "no config.json");

    // a copy of a fixture, then broken in different ways
    let copy = |name: &str| copy_fixture("llama_tied_gqa", dir.path(), name);
    let truncated = copy("truncated");
    let st = truncated.join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() / 2]).unwrap();
    assert_error(&kiln_args(&["compile", truncated.to_str().unwrap(), "-o", o]), "truncated or corrupt safetensors");

    let unknown = copy("unknown");
    let cfg = std::fs::read_to_string(unknown.join("config.json")).unwrap().replace("LlamaForCausalLM", "MysteryForCausalLM");
    std::fs::write(unknown.join("config.json"), cfg).unwrap();
    assert_error(&kiln_args(&["compile", unknown.to_str().unwrap(), "-o", o]), "unknown architecture 'MysteryForCausalLM'");

    let missing = copy("missing");
    let cfg = std::fs::read_to_string(missing.join("config.json")).unwrap().replace("\"hidden_size\"", "\"hidden_sizes\"");
    std::fs::write(missing.join("config.json"), cfg).unwrap();
    assert_error(&kiln_args(&["compile", missing.to_str().unwrap(), "-o", o]), "missing required field 'hidden_size'");

    // a config value the graph does not implement is refused, not ignored
    let biased = copy("biased");
    let cfg = std::fs::read_to_string(biased.join("config.json")).unwrap().replace("\"attention_bias\": false", "\"attention_bias\": true");
    std::fs::write(biased.join("config.json"), cfg).unwrap();
    assert_error(&kiln_args(&["compile", biased.to_str().unwrap(), "-o", o]), "'attention_bias' = true is not supported by Kiln's llama graph");
    let windowed = copy_fixture("qwen2_untied_bias", dir.path(), "windowed");
    let cfg = std::fs::read_to_string(windowed.join("config.json")).unwrap().replace("\"use_sliding_window\": false", "\"use_sliding_window\": true");
    std::fs::write(windowed.join("config.json"), cfg).unwrap();
    assert_error(&kiln_args(&["compile", windowed.to_str().unwrap(), "-o", o]), "'use_sliding_window' = true is not supported by Kiln's qwen2 graph");

    let no_tok = copy("no_tokenizer");
    std::fs::remove_file(no_tok.join("tokenizer.json")).unwrap();
    assert_error(&kiln_args(&["compile", no_tok.to_str().unwrap(), "-o", o]), "no tokenizer.json");

    let gguf = dir.path().join("bad.gguf");
    std::fs::write(&gguf, b"GGUF\x03\0\0\0\x05\0\0\0\0\0\0\0").unwrap();
    assert_error(&kiln_args(&["compile", gguf.to_str().unwrap(), "-o", o]), "truncated GGUF");

    // one tensor of quantisation type 99: magic, version 3, 1 tensor, 0 metadata; name "x", 1 dim of 32, type, offset
    let mut unknown_quant = b"GGUF\x03\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec();
    unknown_quant.extend(1u64.to_le_bytes());
    unknown_quant.push(b'x');
    unknown_quant.extend(1u32.to_le_bytes());
    unknown_quant.extend(32u64.to_le_bytes());
    unknown_quant.extend(99u32.to_le_bytes());
    unknown_quant.extend(0u64.to_le_bytes());
    unknown_quant.resize(256, 0);
    std::fs::write(&gguf, &unknown_quant).unwrap();
    assert_error(&kiln_args(&["compile", gguf.to_str().unwrap(), "-o", o]), "tensor 'x' has quantisation type 99");

    let tiny = fixture("llama_tied_gqa");
    let t = tiny.to_str().unwrap();
    assert_error(&kiln_args(&["compile", t, "-o", "/nonexistent/dir/x.kiln"]), "does not exist");
    assert_error(&kiln_args(&["compile", t, "-o", "/sys/x.kiln"]), "cannot write the artifact here");
    assert_error(&kiln_args(&["compile", t, "-o", dir.path().to_str().unwrap()]), "is a folder");
    assert_error(&kiln_args(&["compile", t, "-o", o, "--target-cpu", "pentium"]), "pentium");
    assert!(!out.exists() && !dir.path().join("x.kiln.partial").exists(), "failed compiles leave no file behind");
}

#[test]
fn bad_artifacts_and_options_get_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let art = compile(&fixture("llama_tied_gqa"), dir.path());
    let a = art.to_str().unwrap();
    let bytes = std::fs::read(&art).unwrap();

    assert_error(&kiln_args(&["run", a, "--temperature", "-1", "hi"]), "--temperature");
    for (flag, value) in [("--top-p", "2"), ("--top-p", "0"), ("--min-p", "1.5"), ("--repeat-penalty", "0"), ("--max-tokens", "0"), ("--ctx", "0"), ("--temperature", "warm"), ("--thinking", "maybe")] {
        assert_error(&kiln_args(&["run", a, flag, value, "hi"]), flag);
    }
    assert_error(&kiln_args(&["run", a, "--bogus", "hi"]), "unexpected argument '--bogus'");
    let env_temp = kiln().args(["run", a, "hi"]).env("TEMP", "-2").output().unwrap();
    assert_error(&env_temp, "--temperature must be 0 or more, got -2");
    assert_error(&kiln_args(&["run", a, "--no-chat", ""]), "the prompt is empty");
    assert_error(&kiln_args(&["chat", "/nonexistent.kiln"]), "No such file");
    assert_error(&kiln_args(&["detokenize", a, "5", "999999"]), "outside the vocabulary");
    assert_error(&kiln_args(&["detokenize", a, "five"]), "'five' is not a token id");
    assert_error(&kiln_args(&["template", "/nonexistent.jinja", "--messages", "/nonexistent.json"]), "No such file");
    let bad_json = dir.path().join("bad.json");
    std::fs::write(&bad_json, "{").unwrap();
    assert_error(&kiln_args(&["prompt", a, "--messages", bad_json.to_str().unwrap()]), "invalid JSON");
    std::fs::write(&bad_json, r#"{"role": "user"}"#).unwrap();
    assert_error(&kiln_args(&["prompt", a, "--messages", bad_json.to_str().unwrap()]), "expected a list of messages");
    assert_error(&kiln_args(&["run", "/nonexistent.kiln", "hi"]), "No such file");

    let broken = dir.path().join("broken.kiln");
    let b = broken.to_str().unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() - 100]).unwrap();
    assert_error(&kiln_args(&["run", b, "hi"]), "truncated artifact");

    let mut other = bytes.clone();
    other[8] = 99; // format version
    std::fs::write(&broken, &other).unwrap();
    assert_error(&kiln_args(&["run", b, "hi"]), "format version 99");

    let mut flipped = bytes.clone();
    let n = flipped.len();
    flipped[n - 10] ^= 0xff;
    std::fs::write(&broken, &flipped).unwrap();
    assert_error(&kiln_args(&["info", b]), "checksum");

    std::fs::write(&broken, b"not an artifact at all, clearly").unwrap();
    assert_error(&kiln_args(&["run", b, "hi"]), "not a Kiln artifact");

    // An artifact whose kernels need features this CPU lacks: every known one it lacks (but the
    // optional AMX, which kernels use only where granted), plus one no CPU has; the message names
    // exactly those, whatever machine runs the test.
    let opened = runtime::artifact::Artifact::open(&art, false).unwrap();
    let mut meta = opened.meta.clone();
    let needed = runtime::cpu::known_features().into_iter().filter(|(f, has)| !has && !runtime::cpu::OPTIONAL.contains(f));
    let lacking: Vec<&str> = needed.map(|(f, _)| f).chain(["amx-imaginary"]).collect();
    meta.cpu_features.extend(lacking.iter().map(|f| f.to_string()));
    runtime::artifact::write(&broken, &meta, opened.code(), opened.weights().len() as u64, |w| w.write_all(opened.weights())).unwrap();
    assert_error(&kiln_args(&["run", b, "hi"]), &format!("CPU features this machine lacks: {}", lacking.join(", ")));

    let long = "word ".repeat(200);
    assert_error(&kiln_args(&["run", a, "--ctx", "32", "--no-chat", &long]), "context holds 32");
}
