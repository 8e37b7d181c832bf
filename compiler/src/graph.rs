//! Graph JSON (schema v1, graphs/README.md): the per-architecture graphs Python traced,
//! embedded into the compiler at build time.
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

pub const SCHEMA_VERSION: u32 = 1;

include!(concat!(env!("OUT_DIR"), "/graphs.rs")); // GRAPHS, written by build.rs

#[derive(Debug, Deserialize)]
pub struct GraphJson {
    pub schema: u32,
    pub architecture: String,
    pub hf_architectures: Vec<String>,
    /// How llama.cpp's GGUF files name and lay out this architecture, where they do.
    #[serde(default)]
    pub gguf: Option<GgufSpec>,
    /// The only values these config keys may have where a config sets them (`"attention_bias":
    /// [false]`): others are not implemented, and refused when bound.
    #[serde(default)]
    pub supported: BTreeMap<String, Vec<Value>>,
    /// Each layer's kind, where layers differ (Gemma's sliding and global layers).
    #[serde(default)]
    pub layer_kinds: Option<LayerKindsSpec>,
    pub dims: BTreeMap<String, DimSpec>,
    pub params: BTreeMap<String, ParamSpec>,
    pub prologue: Vec<NodeJson>,
    pub layer: LayerJson,
    pub epilogue: Vec<NodeJson>,
    pub outputs: BTreeMap<String, usize>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GgufSpec {
    /// `general.architecture`
    pub architecture: String,
    /// Whether llama.cpp's converter permuted each head's Q/K rows into its rope layout.
    #[serde(default)]
    pub permuted_qk: bool,
    /// config key (dotted: nested) -> metadata key under `<architecture>.`, beyond the common ones
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// llama.cpp tensor name within a layer -> Hugging Face name, beyond or instead of the common ones
    #[serde(default)]
    pub tensors: BTreeMap<String, String>,
    /// tensor name -> config key its values become (llama.cpp stores rope factors as tensors)
    #[serde(default)]
    pub tensor_config: BTreeMap<String, String>,
    /// Whether llama.cpp's converter already added each weight's `offset` (Gemma's 1 + w norms).
    #[serde(default)]
    pub offsets_applied: bool,
    /// How its sentencepiece vocabularies tokenize: `llama` (default), `phi3` or `gemma`.
    #[serde(default)]
    pub sentencepiece: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DimSpec {
    #[serde(default)]
    pub config: Vec<String>,
    pub default: Option<String>,
}

/// Each layer's kind: the config's list (`layer_types`), else every `period`-th layer is
/// `kinds[1]` and the others `kinds[0]`.
#[derive(Debug, Deserialize)]
pub struct LayerKindsSpec {
    pub config: Vec<String>,
    pub period: ParamSpec,
    pub kinds: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct ParamSpec {
    #[serde(default)]
    pub config: Vec<String>,
    #[serde(default)]
    pub default: Value,
    /// One value per layer, bound by each layer's kind.
    #[serde(default)]
    pub by_layer_kind: Option<BTreeMap<String, ParamSpec>>,
}

#[derive(Debug, Deserialize)]
pub struct LayerJson {
    pub count: String,
    pub carry_in: usize,
    pub carry: usize,
    pub carry_out: usize,
    pub nodes: Vec<NodeJson>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct NodeJson {
    pub id: usize,
    pub op: String,
    pub inputs: Vec<usize>,
    pub shape: Vec<String>,
    #[serde(default)]
    pub attrs: serde_json::Map<String, Value>,
}

pub fn parse(arch: &str, text: &str) -> Result<GraphJson> {
    let graph: GraphJson =
        serde_json::from_str(text).map_err(|e| Error::Graph { arch: arch.into(), detail: e.to_string() })?;
    if graph.schema != SCHEMA_VERSION {
        return Err(Error::Graph { arch: arch.into(), detail: format!("schema {} (expected {SCHEMA_VERSION})", graph.schema) });
    }
    Ok(graph)
}

/// The graph for a config.json: by `architectures`, else by `model_type`.
pub fn for_config(config: &Value) -> Result<GraphJson> {
    let named: Vec<String> = config["architectures"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let model_type = config["model_type"].as_str().unwrap_or("");
    for (arch, text) in GRAPHS {
        let graph = parse(arch, text)?;
        if named.iter().any(|n| graph.hf_architectures.contains(n)) || (named.is_empty() && *arch == model_type) {
            return Ok(graph);
        }
    }
    let asked = named.first().cloned().unwrap_or_else(|| model_type.to_string());
    let known: Vec<&str> = GRAPHS.iter().map(|(a, _)| *a).collect();
    Err(Error::UnknownArchitecture(if asked.is_empty() { "(none given)".into() } else { asked }, known.join(", ")))
}
