//! `kiln convert`, checked with the readers other engines use (python-trace/check_converted.py):
//! GGUF files equal what llama.cpp's conventions give for the same weights (the tiny fixtures'
//! GGUF twins, written with the `gguf` package), load in transformers with the source's weights
//! and token ids, and compile back to the source's logits and greedy text; MLX folders equal
//! `mlx_lm.convert`'s bit for bit and `mlx_lm.generate` continues them as Kiln does.
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_tests::*;

/// `kiln convert ARGS…`, which must succeed.
fn convert(args: &[&str]) {
    let out = kiln().arg("convert").args(args).output().unwrap();
    assert!(out.status.success(), "kiln convert {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// python-trace/check_converted.py (or another script there) in the project's venv; its output.
fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new(root().join(".venv/bin/python")).arg(root().join("python-trace").join(script)).args(args).env("TQDM_DISABLE", "1").current_dir(root().join("python-trace")).output().unwrap();
    assert!(out.status.success(), "{script} {args:?}:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn model(name: &str, make_target: &str) -> PathBuf {
    let path = root().join("models").join(name);
    assert!(path.exists(), "{} is missing: run `make {make_target}`", path.display());
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every family with a GGUF form: tensors (names, Q/K layout, Gemma's 1 + w, rope factor tensors)
/// and metadata equal the twin written by make_gguf_fixtures.py; compiled back, the source's logits.
#[test]
fn gguf_of_every_family_follows_llama_cpp_and_compiles_back() {
    let dir = tempfile::tempdir().unwrap();
    let names = ["llama_tied_gqa", "llama_untied_llama3_rope", "qwen2_untied_bias", "qwen3_qk_norm", "granite_multipliers", "phi3_fused_qkv", "phi3_longrope_partial", "gemma2_softcap", "gemma3_local_global"];
    for name in names {
        let out = dir.path().join(format!("{name}.gguf"));
        convert(&[s(&fixture(name)), "--to", "gguf", "-o", s(&out)]);
        let said = python("check_converted.py", &["gguf-like", s(&out), s(&fixture("gguf").join(format!("{name}.gguf")))]);
        assert!(said.contains("tensors and"), "{said}");
        check_logits(name, &out, &fixture(name).join("reference.json"));
    }
}

/// transformers loads the written GGUF (gguf_file=) with the source's weights and token ids.
#[test]
fn transformers_reads_written_gguf_as_the_source() {
    let dir = tempfile::tempdir().unwrap();
    for source in [fixture("llama_tied_gqa"), fixture("qwen2_untied_bias"), model("SmolLM2-135M-Instruct.Q4_1.gguf", "model")] {
        let out = dir.path().join("out.gguf");
        convert(&[s(&source), "--to", "gguf", "-o", s(&out)]);
        let said = python("check_converted.py", &["transformers", s(&out), s(&source)]);
        assert!(said.contains("transformers:"), "{said}");
    }
}

/// `--quant` writes the blocks the `gguf` package's quantisers write for the same weights.
#[test]
fn quantised_gguf_equals_the_gguf_packages() {
    let dir = tempfile::tempdir().unwrap();
    for quant in ["q8_0", "q4_0", "bf16", "f16"] {
        let out = dir.path().join(format!("{quant}.gguf"));
        convert(&[s(&fixture("qwen2_untied_bias")), "--to", "gguf", "--quant", quant, "-o", s(&out)]);
        let said = python("check_converted.py", &["gguf-twin", s(&out), "qwen2_untied_bias", quant]);
        assert!(said.contains("tensors and"), "{quant}: {said}");
    }
}

/// SmolLM2 through GGUF and MLX and back: each compiled file continues prompts as its source does.
#[test]
fn real_model_round_trips_keep_greedy_text() {
    let dir = tempfile::tempdir().unwrap();
    // the Q4_1 blocks copied: the same greedy text as transformers on the source
    let gguf = dir.path().join("smollm2.gguf");
    convert(&[s(&model("SmolLM2-135M-Instruct.Q4_1.gguf", "model")), "--to", "gguf", "-o", s(&gguf)]);
    real_model::greedy_continuations_match(&compile(&gguf, dir.path()), "smollm2_reference.json");
    // MLX's 4-bit groups written as GGUF f16: mlx_lm.generate's text on the MLX source
    let from_mlx = dir.path().join("from_mlx.gguf");
    convert(&[s(&model("SmolLM2-135M-Instruct-mlx-4bit", "smollm2-mlx")), "--to", "gguf", "-o", s(&from_mlx)]);
    real_model::greedy_continuations_match(&compile(&from_mlx, dir.path()), "smollm2_mlx_reference.json");
}

/// MLX folders written from the Hugging Face folder equal mlx_lm.convert's bit for bit (4 bits in
/// groups of 64, 8 in groups of 32, 3 in groups of 128); one written from the GGUF (4 bits, groups of 32) is continued by
/// `mlx_lm.generate` as Kiln continues it.
#[test]
fn mlx_folders_equal_mlx_lm_convert_and_generate_as_kiln() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("from_hf");
    convert(&[s(&model("SmolLM2-135M-Instruct-hf", "smollm2-mlx")), "--to", "mlx", "--quant", "4bit", "-o", s(&out)]);
    let said = python("check_converted.py", &["mlx-like", s(&out), s(&model("SmolLM2-135M-Instruct-mlx-4bit", "smollm2-mlx"))]);
    assert!(said.contains("bit for bit"), "{said}");
    for (bits, group) in [("8", "32"), ("3", "128")] {
        let out = dir.path().join(format!("from_hf_{bits}_{group}"));
        convert(&[s(&model("SmolLM2-135M-Instruct-hf", "smollm2-mlx")), "--to", "mlx", "--quant", &format!("{bits}bit"), "--group-size", group, "-o", s(&out)]);
        let said = python("check_converted.py", &["mlx-convert", s(&out), s(&model("SmolLM2-135M-Instruct-hf", "smollm2-mlx")), bits, group]);
        assert!(said.contains("bit for bit"), "{bits} bits, groups of {group}: {said}");
    }

    let out = dir.path().join("from_gguf");
    convert(&[s(&model("SmolLM2-135M-Instruct.Q4_1.gguf", "model")), "--to", "mlx", "--quant", "4bit", "--group-size", "32", "-o", s(&out)]);
    let reference = dir.path().join("reference.json");
    python("reference_mlx.py", &[s(&out), s(&reference)]);
    real_model::greedy_continuations_match(&compile(&out, dir.path()), s(&reference));
}

/// What cannot be written gets one line naming it and a non-zero exit.
#[test]
fn unsupported_conversions_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cases: [(&[&str], &str); 4] = [
        (&["--to", "gguf", "--quant", "4bit"], "--quant 4bit cannot be written to GGUF"),
        (&["--to", "mlx", "--quant", "q4_0"], "--quant q4_0 cannot be written to MLX"),
        (&["--to", "mlx", "--quant", "7bit"], "7 bits in groups of 64 is not supported"),
        (&["--to", "mlx", "--quant", "4bit", "--group-size", "48"], "4 bits in groups of 48 is not supported"),
    ];
    for (args, expected) in cases {
        let o = kiln().arg("convert").arg(fixture("llama_tied_gqa")).args(args).arg("-o").arg(&out).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(expected) && err.trim().lines().count() == 1, "{args:?}: {err}");
    }
}

/// A Hugging Face folder's sentencepiece-style tokenizer (here the one Kiln reads from llama.cpp's
/// real Llama 2 vocabulary) written to GGUF and read back gives the same ids on the vocabulary's
/// 47 test texts, in Kiln and in transformers.
#[test]
fn sentencepiece_tokenizers_are_written_to_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = fixture("vocab/ggml-vocab-llama-spm.gguf");
    let spm = compiler::load_model(&vocab).unwrap();
    let folder = copy_fixture("llama_tied_gqa", dir.path(), "spm");
    std::fs::write(folder.join("tokenizer.json"), &spm.tokenizer_json).unwrap();
    let config = r#"{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": true}"#;
    std::fs::write(folder.join("tokenizer_config.json"), config).unwrap();
    let out = dir.path().join("spm.gguf");
    convert(&[s(&folder), "--to", "gguf", "-o", s(&out)]);
    let (a, b) = (compiler::load_model(&vocab).unwrap(), compiler::load_model(&out).unwrap());
    let tokenizer = |m: &compiler::source::ModelSource| runtime::tokenizer::Tokenizer::new(&m.tokenizer_json, None, false).unwrap();
    let (a, b) = (tokenizer(&a), tokenizer(&b));
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture("vocab/expected.json")).unwrap()).unwrap();
    let texts: Vec<&str> = expected["ggml-vocab-llama-spm.gguf"].as_array().unwrap().iter().map(|c| c["text"].as_str().unwrap()).collect();
    for text in &texts {
        assert_eq!(b.encode_without_bos(text).unwrap(), a.encode_without_bos(text).unwrap(), "{text:?}");
    }
    let said = python("check_converted.py", &["tokenizer", s(&out), s(&vocab)]);
    assert!(said.contains("ids equal"), "{said}");
}

/// A GGUF's own tokenizer metadata (here llama.cpp's real Llama 2 sentencepiece vocabulary) is
/// written back as it was: the gguf reader sees the same keys and values, Kiln the same tokenizer.
#[test]
fn gguf_tokenizers_are_written_back_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let source = fixture("vocab/ggml-vocab-llama-spm.gguf");
    let out = dir.path().join("out.gguf");
    convert(&[s(&source), "--to", "gguf", "-o", s(&out)]);
    let said = python("check_converted.py", &["gguf-like", s(&out), s(&source)]);
    assert!(said.contains("metadata keys equal"), "{said}");
    let (a, b) = (compiler::load_model(&source).unwrap(), compiler::load_model(&out).unwrap());
    assert_eq!((a.tokenizer_json, a.add_bos, a.special_tokens), (b.tokenizer_json, b.add_bos, b.special_tokens));
}

/// GGUF files written as MLX folders (floats; Gemma's norm gains back to w from llama.cpp's 1 + w)
/// compile back to transformers' logits.
#[test]
fn gguf_to_mlx_compiles_back() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["llama_tied_gqa", "gemma2_softcap"] {
        let out = dir.path().join(name);
        convert(&[s(&fixture("gguf").join(format!("{name}.gguf"))), "--to", "mlx", "-o", s(&out)]);
        check_logits(name, &out, &fixture(name).join("reference.json"));
    }
}
