//! `kiln-rt`, the runtime-only build: it links no LLVM, stays small, and its commands answer as
//! the full `kiln`'s do on the same artifact (run, chat, info, tokenize, detokenize, prompt);
//! given a model instead of an artifact it says so in one line.
use std::io::Write;
use std::process::{Command, Output, Stdio};

use kiln_tests::*;

/// The `kiln-rt` cargo built next to `kiln` (`make test` builds every binary first).
fn kiln_rt() -> Command {
    let path = std::path::Path::new(kiln().get_program()).with_file_name("kiln-rt");
    assert!(path.exists(), "{} is not built: run `cargo build --release --workspace --bins`", path.display());
    Command::new(path)
}

fn output(mut cmd: Command, args: &[&str], stdin: &str) -> Output {
    let mut child = cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn kiln_rt_answers_as_kiln_does_without_llvm() {
    let art = compile(&fixture("llama_tied_gqa"), &test_dir("runtime_only"));
    let art = art.to_str().unwrap();
    let text = root().join("tests/fixtures/perplexity.txt");
    let cases: [(&[&str], &str); 6] = [
        (&["run", art, "--temperature", "0", "--max-tokens", "12", "Hello there"], ""),
        (&["chat", art, "--temperature", "0", "--max-tokens", "6"], "hi\nand again\n"),
        (&["tokenize", art, "--ids", "The cat sat."], ""),
        (&["detokenize", art, "5", "17", "3"], ""),
        (&["info", art, "--json"], ""),
        (&["perplexity", art, text.to_str().unwrap(), "--ctx", "16"], ""),
    ];
    for (args, stdin) in cases {
        let (full, rt) = (output(kiln(), args, stdin), output(kiln_rt(), args, stdin));
        assert!(rt.status.success(), "kiln-rt {args:?}: {}", String::from_utf8_lossy(&rt.stderr));
        let (mut a, mut b): (String, String) = (String::from_utf8(full.stdout).unwrap(), String::from_utf8(rt.stdout).unwrap());
        if args[0] == "info" {
            // the measured bandwidth differs from run to run
            let strip = |s: &str| { let mut v: serde_json::Value = serde_json::from_str(s).unwrap(); v.as_object_mut().unwrap().remove("machine"); v };
            (a, b) = (strip(&a).to_string(), strip(&b).to_string());
        }
        assert_eq!(a, b, "kiln-rt {args:?} differs from kiln");
    }

    let gguf = root().join("tests/fixtures/gguf/llama_tied_gqa.gguf");
    let refused = output(kiln_rt(), &["tokenize", gguf.to_str().unwrap(), "hi"], "");
    let err = String::from_utf8(refused.stderr).unwrap();
    assert!(!refused.status.success() && err.lines().count() == 1 && err.contains("not a Kiln artifact"), "{err}");

    // no LLVM inside: not linked, not a symbol; and small enough to copy next to a model
    let bin = std::path::PathBuf::from(kiln_rt().get_program());
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    assert!(!String::from_utf8_lossy(&ldd.stdout).to_lowercase().contains("llvm"));
    let bytes = std::fs::read(&bin).unwrap();
    assert!(!bytes.windows(4).any(|w| w == b"LLVM"), "LLVM symbols in kiln-rt"); // `kiln` holds hundreds
    assert!(bytes.len() < 15 << 20, "kiln-rt is {} bytes", bytes.len());
}
