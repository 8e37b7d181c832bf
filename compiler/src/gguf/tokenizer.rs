//! A tokenizer.json built from GGUF tokenizer metadata, the way transformers converts it:
//! byte-level BPE (tokenizer.ggml.model = gpt2) with the pre-tokenizer its `pre` names, or a
//! sentencepiece vocabulary (llama) as a byte-fallback BPE in the style its architecture uses.
use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::writer::MetaValue;
use crate::error::{Error, Result};

/// Split patterns by `tokenizer.ggml.pre`; others use GPT-2's own byte-level regex.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const SPLITS: &[(&str, &str)] = &[
    ("llama3", LLAMA3_SPLIT),
    ("llama-v3", LLAMA3_SPLIT),
    ("llama-bpe", LLAMA3_SPLIT),
    ("smaug-bpe", LLAMA3_SPLIT),
    ("qwen2", QWEN2_SPLIT),
    ("deepseek-r1-qwen", QWEN2_SPLIT),
];

/// GPT-2's byte -> printable character table.
fn byte_alphabet() -> Vec<char> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut chars = printable.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + n);
            n += 1;
        }
    }
    let mut table = vec![' '; 256];
    for (b, c) in printable.iter().zip(chars) {
        table[*b as usize] = char::from_u32(c).unwrap();
    }
    table
}

/// How a sentencepiece (`tokenizer.ggml.model` = llama) vocabulary becomes a tokenizer, by the
/// graph's `gguf.sentencepiece`: transformers picks these by architecture.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SentencePiece {
    /// Metaspace pre-tokenizer, "▁" before the first word (Llama, Mistral)
    Llama,
    /// "▁" for every space by a normaliser, also before the text (Phi-3)
    Phi3,
    /// spaces as "▁" without a leading one; merges in the vocabulary's order (Gemma)
    Gemma,
}

impl SentencePiece {
    pub fn from_name(name: Option<&str>) -> Option<SentencePiece> {
        match name {
            None | Some("llama") => Some(SentencePiece::Llama),
            Some("phi3") => Some(SentencePiece::Phi3),
            Some("gemma") => Some(SentencePiece::Gemma),
            Some(_) => None,
        }
    }
}

/// The tokenizer.json text, and whether a BOS token goes first when the file does not say.
pub fn build(meta: &std::collections::BTreeMap<String, Value>, path: &str, style: SentencePiece) -> Result<(String, bool)> {
    let bad = |detail: String| Error::Format { path: path.into(), detail };
    let model = meta.get("tokenizer.ggml.model").and_then(Value::as_str).unwrap_or("");
    let strings = |key: &str| -> Vec<String> {
        meta.get(key).and_then(Value::as_array).map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default()
    };
    let tokens = strings("tokenizer.ggml.tokens");
    if tokens.is_empty() {
        return Err(bad("no tokenizer.ggml.tokens".into()));
    }
    let types: Vec<u64> = meta.get("tokenizer.ggml.token_type").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default();
    let merges = strings("tokenizer.ggml.merges");
    let (tokenizer, add_bos) = match model {
        "gpt2" => (byte_level(meta, &tokens, &merges, &types), false),
        "llama" => {
            let scores: Vec<f64> = meta.get("tokenizer.ggml.scores").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
            (sentencepiece(&tokens, &merges, &scores, &types, style).map_err(bad)?, true)
        }
        other => return Err(bad(format!("tokenizer model '{other}' is not supported (byte-level BPE 'gpt2' and sentencepiece 'llama' are)"))),
    };
    Ok((tokenizer.to_string(), add_bos))
}

/// Control tokens (type 3) as special added tokens, user-defined ones (4) as plain added tokens;
/// `keep` filters the control ones.
fn added_tokens(tokens: &[String], types: &[u64], keep: impl Fn(&str) -> bool) -> Vec<Value> {
    tokens
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match types.get(i) {
            Some(3) if keep(t) => Some((i, t, true)),
            Some(4) => Some((i, t, false)),
            _ => None,
        })
        .map(|(i, t, special)| json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": special}))
        .collect()
}

fn bpe(vocab: serde_json::Map<String, Value>, merges: Value, sentencepiece: bool) -> Value {
    json!({"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": if sentencepiece { Value::Null } else { json!("") },
           "end_of_word_suffix": if sentencepiece { Value::Null } else { json!("") }, "fuse_unk": sentencepiece, "byte_fallback": sentencepiece,
           "ignore_merges": false, "vocab": vocab, "merges": merges})
}

/// Byte-level BPE with the pre-tokenizer its `pre` names.
fn byte_level(meta: &std::collections::BTreeMap<String, Value>, tokens: &[String], merges: &[String], types: &[u64]) -> Value {
    let alphabet = byte_alphabet();
    let spelled = |t: &str| t.chars().all(|c| alphabet.contains(&c));
    let vocab: serde_json::Map<String, Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let key = if spelled(t) { t.clone() } else { t.bytes().map(|b| alphabet[b as usize]).collect() };
            (key, json!(i))
        })
        .collect();
    // a control token spelled outside the byte alphabet is a llama.cpp mislabel: not added
    let added = added_tokens(tokens, types, spelled);
    let pre = meta.get("tokenizer.ggml.pre").and_then(Value::as_str).unwrap_or("");
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added, "normalizer": null,
        "pre_tokenizer": byte_level_pre_tokenizer(pre), "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": bpe(vocab, json!(merges), false),
    })
}

/// The pre-tokenizer of a byte-level BPE whose `tokenizer.ggml.pre` is `pre`.
fn byte_level_pre_tokenizer(pre: &str) -> Value {
    match SPLITS.iter().find(|(name, _)| *name == pre) {
        Some((_, pattern)) => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}),
        None => json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}),
    }
}

/// What a pre-tokenizer does: each step's type with its split regex or byte-level regex flag.
fn pre_tokenizer_steps(v: &Value) -> Vec<(String, Value)> {
    match v["type"].as_str() {
        Some("Sequence") => v["pretokenizers"].as_array().into_iter().flatten().flat_map(pre_tokenizer_steps).collect(),
        Some(t @ "Split") => vec![(t.into(), v["pattern"].clone())],
        Some(t @ "ByteLevel") => vec![(t.into(), v.get("use_regex").cloned().unwrap_or(json!(true)))],
        Some(t) => vec![(t.into(), Value::Null)],
        None => vec![],
    }
}

/// tokenizer.json as GGUF tokenizer metadata, as llama.cpp's converter writes it: tokens by id,
/// types (1 normal, 2 unknown, 3 control = special added, 4 user-defined = other added, 5 unused =
/// a gap, 6 byte), merges. A byte-level BPE is `gpt2` with the `pre` name whose pre-tokenizer (as
/// above) is this one's; a byte-fallback BPE (sentencepiece-style) is `llama`, each token scored
/// by its merge's rank (−rank of the first merge making it, 0 for the rest), which orders
/// sentencepiece's merges as the merge list does.
pub fn gguf_metadata(tokenizer_json: &str) -> std::result::Result<Vec<(String, MetaValue)>, String> {
    let t: Value = serde_json::from_str(tokenizer_json).map_err(|e| format!("tokenizer.json: {e}"))?;
    let model = &t["model"];
    let sentencepiece = model["byte_fallback"] == true;
    let byte_level = pre_tokenizer_steps(&t["pre_tokenizer"]).iter().any(|(k, _)| k == "ByteLevel");
    if model["type"] != "BPE" || !(sentencepiece || byte_level) {
        return Err("only BPE tokenizers (byte-level, or sentencepiece-style with byte fallback) can be written to GGUF".into());
    }
    let pre = if sentencepiece {
        "default"
    } else {
        let steps = pre_tokenizer_steps(&t["pre_tokenizer"]);
        ["gpt-2", "llama-bpe", "qwen2"]
            .into_iter()
            .find(|p| pre_tokenizer_steps(&byte_level_pre_tokenizer(p)) == steps)
            .ok_or_else(|| format!("the tokenizer's pre-tokenizer {steps:?} has no llama.cpp name Kiln knows (gpt-2, llama-bpe, qwen2)"))?
    };
    let unk = model["unk_token"].as_str().unwrap_or("<unk>");
    let is_byte = |t: &str| t.len() == 6 && t.starts_with("<0x") && t.ends_with('>') && u8::from_str_radix(&t[3..5], 16).is_ok();
    let mut by_id: BTreeMap<u64, (String, i32)> = BTreeMap::new();
    for (token, id) in model["vocab"].as_object().into_iter().flatten() {
        let kind = match () {
            _ if sentencepiece && token == unk => 2,
            _ if sentencepiece && is_byte(token) => 6,
            _ => 1,
        };
        by_id.insert(id.as_u64().ok_or("tokenizer.json: a vocabulary id is not a number")?, (token.clone(), kind));
    }
    for a in t["added_tokens"].as_array().into_iter().flatten() {
        let (Some(id), Some(content)) = (a["id"].as_u64(), a["content"].as_str()) else { continue };
        let kind = match () {
            _ if sentencepiece && content == unk => 2,
            _ if a["special"] == true => 3,
            _ => 4,
        };
        by_id.insert(id, (content.to_string(), kind));
    }
    let n = by_id.keys().last().map_or(0, |&i| i + 1);
    let (tokens, types): (Vec<String>, Vec<i32>) = (0..n).map(|i| by_id.remove(&i).unwrap_or_else(|| (format!("[PAD{i}]"), 5))).unzip();
    let merges: Vec<String> = model["merges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m.as_str().map(String::from).unwrap_or_else(|| m.as_array().map(|p| p.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")).unwrap_or_default()))
        .collect();
    let mut meta = vec![
        ("tokenizer.ggml.model".into(), MetaValue::Str(if sentencepiece { "llama" } else { "gpt2" }.into())),
        ("tokenizer.ggml.pre".into(), MetaValue::Str(pre.into())),
    ];
    if sentencepiece {
        let mut rank: BTreeMap<String, usize> = BTreeMap::new();
        for (i, m) in merges.iter().enumerate() {
            rank.entry(m.replacen(' ', "", 1)).or_insert(i);
        }
        meta.push(("tokenizer.ggml.scores".into(), MetaValue::F32s(tokens.iter().map(|t| rank.get(t).map_or(0.0, |&r| -(r as f32))).collect())));
    }
    meta.extend([
        ("tokenizer.ggml.tokens".into(), MetaValue::Strs(tokens)),
        ("tokenizer.ggml.token_type".into(), MetaValue::I32s(types)),
        ("tokenizer.ggml.merges".into(), MetaValue::Strs(merges)),
    ]);
    Ok(meta)
}

/// A sentencepiece vocabulary as a byte-fallback BPE, merges from the file or recovered from
/// the vocabulary (transformers' `generate_merges`, best score first).
fn sentencepiece(tokens: &[String], merges: &[String], scores: &[f64], types: &[u64], style: SentencePiece) -> std::result::Result<Value, String> {
    // Gemma stores runs of spaces as spaces; its tokenizer spells them "▁"
    let tokens: Vec<String> = match style {
        SentencePiece::Gemma => tokens.iter().map(|t| if !t.is_empty() && t.chars().all(|c| c == ' ') { "▁".repeat(t.chars().count()) } else { t.clone() }).collect(),
        _ => tokens.to_vec(),
    };
    let vocab: serde_json::Map<String, Value> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), json!(i))).collect();
    let merges: Vec<Value> = if merges.is_empty() {
        // Gemma's scores do not follow its merge order; its vocabulary order does
        let score = |i: usize| if style == SentencePiece::Gemma { -(i as f64) } else { scores.get(i).copied().unwrap_or(0.0) };
        if style != SentencePiece::Gemma && scores.len() != tokens.len() {
            return Err(format!("tokenizer.ggml.scores has {} entries for {} tokens", scores.len(), tokens.len()));
        }
        generate_merges(&tokens, &vocab, score).into_iter().map(|(l, r)| json!([l, r])).collect()
    } else {
        merges.iter().map(|m| json!(m.splitn(2, ' ').collect::<Vec<_>>())).collect()
    };
    let strip = json!({"type": "Strip", "content": " ", "start": 1, "stop": 0});
    let mut decoders = vec![json!({"type": "Replace", "pattern": {"String": "▁"}, "content": " "}), json!({"type": "ByteFallback"}), json!({"type": "Fuse"})];
    let (normalizer, pre_tokenizer) = match style {
        SentencePiece::Llama => {
            decoders.push(strip);
            (Value::Null, json!({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}))
        }
        SentencePiece::Phi3 => {
            decoders.push(strip);
            (json!({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}), Value::Null)
        }
        SentencePiece::Gemma => (
            json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"}),
            json!({"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false}),
        ),
    };
    let mut model = bpe(vocab, json!(merges), true);
    if style == SentencePiece::Gemma {
        model["unk_token"] = json!("<unk>");
    }
    Ok(json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added_tokens(&tokens, types, |_| true),
        "normalizer": normalizer, "pre_tokenizer": pre_tokenizer, "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": decoders}, "model": model,
    }))
}

/// Every (left, right) split of a token whose halves are both tokens, each token's splits by the
/// halves' ids, all sorted by the token's score (best first), then the longer left and right half
/// first; ties keep vocabulary order.
fn generate_merges(tokens: &[String], vocab: &serde_json::Map<String, Value>, score: impl Fn(usize) -> f64) -> Vec<(String, String)> {
    let id = |t: &str| vocab.get(t).and_then(Value::as_u64);
    let mut merges: Vec<(String, String, f64)> = vec![];
    for (i, t) in tokens.iter().enumerate() {
        let mut local: Vec<(u64, u64, String, String)> = t
            .char_indices()
            .skip(1)
            .filter_map(|(at, _)| {
                let (l, r) = t.split_at(at);
                Some((id(l)?, id(r)?, l.to_string(), r.to_string()))
            })
            .collect();
        local.sort_by_key(|(a, b, _, _)| (*a, *b));
        merges.extend(local.into_iter().map(|(_, _, l, r)| (l, r, score(i))));
    }
    let key = |m: &(String, String, f64)| (m.2, m.0.chars().count(), m.1.chars().count());
    merges.sort_by(|a, b| key(b).partial_cmp(&key(a)).unwrap_or(std::cmp::Ordering::Equal));
    merges.into_iter().map(|(l, r, _)| (l, r)).collect()
}
