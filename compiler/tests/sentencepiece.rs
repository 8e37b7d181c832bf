//! Sentencepiece vocabularies from GGUF metadata (python-trace/make_sentencepiece_fixture.py): the
//! tokenizer Kiln builds in each style gives the ids transformers' own GGUF converter gives, on
//! texts with leading and repeated spaces, new lines, accents, CJK, emoji (byte fallback) and
//! control-token text; and decodes them back to the text.
use compiler::gguf::tokenizer::{build, SentencePiece};
use serde_json::Value;

#[test]
fn each_style_tokenizes_as_transformers() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/sentencepiece.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let meta = fixture["meta"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (name, style) in [("llama", SentencePiece::Llama), ("phi3", SentencePiece::Phi3), ("gemma", SentencePiece::Gemma)] {
        let (json, add_bos) = build(&meta, "fixture", style).unwrap();
        assert!(add_bos, "sentencepiece files start with BOS unless they say otherwise");
        let tokenizer: tokenizers::Tokenizer = json.parse().unwrap();
        for (text, want) in fixture["texts"].as_array().unwrap().iter().zip(fixture["ids"][name].as_array().unwrap()) {
            let text = text.as_str().unwrap();
            let ids = tokenizer.encode(text, false).unwrap().get_ids().to_vec();
            let want: Vec<u32> = want.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
            assert_eq!(ids, want, "{name}: {text:?}");
            if !text.contains("</s>") && !text.contains("<s>") && !(name == "llama" && text.starts_with(' ')) {
                assert_eq!(tokenizer.decode(&ids, false).unwrap(), text, "{name}: decoding {text:?}");
            }
        }
    }
}

/// Real sentencepiece vocabularies, llama.cpp's vocab-only GGUF files of Llama 2 and Phi-3 (from the
/// llama-cpp-python sdist, with its 47 test texts each): transformers' ids for every text.
#[test]
fn real_vocabularies_tokenize_as_transformers() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/vocab");
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    for (file, arch, style) in [("ggml-vocab-llama-spm.gguf", "llama", SentencePiece::Llama), ("ggml-vocab-phi-3.gguf", "phi3", SentencePiece::Phi3)] {
        let gguf = compiler::gguf::file::GgufFile::open(&dir.join(file)).unwrap();
        assert_eq!(gguf.get("general.architecture").and_then(Value::as_str), Some(arch));
        let (json, _) = build(&gguf.meta, file, style).unwrap();
        let tokenizer: tokenizers::Tokenizer = json.parse().unwrap();
        for case in expected[file].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let want: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
            assert_eq!(tokenizer.encode(text, false).unwrap().get_ids(), want.as_slice(), "{file}: {text:?}");
        }
    }
}
