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
