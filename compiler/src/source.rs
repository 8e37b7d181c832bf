//! A model to compile, from whichever format it came in: config, weights, tokenizer, template.
use std::collections::BTreeMap;

use runtime::artifact::GenerationDefaults;
use serde_json::Value;

use crate::error::Result;

#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub shape: Vec<usize>,
    /// The stored type: "F32", "BF16", "Q4_1", …
    pub dtype: String,
}

pub trait Weights {
    fn tensors(&self) -> &BTreeMap<String, TensorInfo>;
    /// The tensor's values as f32, row-major in its Hugging Face layout.
    fn read_f32(&self, name: &str) -> Result<Vec<f32>>;
    /// The tensor's stored bytes (its `dtype`), rows in their Hugging Face order.
    fn read_raw(&self, name: &str) -> Result<Vec<u8>>;
}

pub struct ModelSource {
    /// Where it came from, for messages and `kiln info`.
    pub path: String,
    pub config: Value,
    pub weights: Box<dyn Weights>,
    /// tokenizer.json text.
    pub tokenizer_json: String,
    /// Chat templates by name: "default", and e.g. "tool_use".
    pub chat_templates: BTreeMap<String, String>,
    /// Special tokens' text as templates see them: bos_token, eos_token, unk_token, pad_token.
    pub special_tokens: BTreeMap<String, String>,
    pub add_bos: bool,
    pub generation: GenerationDefaults,
    /// Extra end-of-sequence ids named by config files.
    pub eos_token_ids: Vec<u32>,
    /// The weights already include the graph's weight offsets (llama.cpp's Gemma files).
    pub offsets_applied: bool,
    /// A GGUF file's own `tokenizer.ggml.*` metadata, which `kiln convert` writes back as it was.
    pub gguf_tokenizer: BTreeMap<String, Value>,
}

/// Ids from a JSON value that is a number or a list of numbers.
pub fn ids(v: &Value) -> Vec<u32> {
    match v {
        Value::Number(n) => n.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
        Value::Array(a) => a.iter().flat_map(ids).collect(),
        _ => vec![],
    }
}
