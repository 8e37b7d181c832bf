//! GGUF import: config from metadata, tensors renamed to Hugging Face names (Q/K rows
//! un-permuted back from llama.cpp's rope layout) and dequantised, tokenizer and chat template.
pub mod blocks;
pub mod file;
pub mod tokenizer;
pub mod writer;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::graph::GgufSpec;
use crate::source::{ModelSource, TensorInfo, Weights};
use file::{GgufFile, TensorRecord};

/// GGUF tensor name (after `blk.N.`) -> Hugging Face name (after `model.layers.N.`).
const LAYER_NAMES: &[(&str, &str)] = &[
    ("attn_norm", "input_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("attn_q_norm", "self_attn.q_norm"),
    ("attn_k_norm", "self_attn.k_norm"),
    ("ffn_norm", "post_attention_layernorm"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

/// The Hugging Face class and GGUF spec of the graph that names `arch` as its GGUF architecture.
fn graph_for_gguf(arch: &str) -> Result<(String, GgufSpec)> {
    let graphs = crate::graph::GRAPHS.iter().map(|(name, text)| crate::graph::parse(name, text)).collect::<Result<Vec<_>>>()?;
    let known: Vec<&str> = graphs.iter().filter_map(|g| g.gguf.as_ref()).map(|g| g.architecture.as_str()).collect();
    graphs
        .iter()
        .find_map(|g| g.gguf.as_ref().filter(|s| s.architecture == arch).and_then(|s| Some((g.hf_architectures.first()?.clone(), s.clone()))))
        .ok_or_else(|| Error::UnknownArchitecture(arch.to_string(), known.join(", ")))
}

/// A tensor's Hugging Face name: the graph's own names for layer tensors first, then the common ones.
fn hf_name(gguf: &str, spec: &GgufSpec) -> Option<String> {
    let global = [("token_embd", "model.embed_tokens"), ("output_norm", "model.norm"), ("output", "lm_head")];
    let (stem, suffix) = gguf.rsplit_once('.')?;
    if let Some((_, hf)) = global.iter().find(|(g, _)| *g == stem) {
        return Some(format!("{hf}.{suffix}"));
    }
    let rest = stem.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let hf = spec.tensors.get(part).map(String::as_str).or_else(|| LAYER_NAMES.iter().find(|(g, _)| *g == part).map(|(_, hf)| *hf))?;
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

/// A Hugging Face tensor's GGUF name: hf_name's inverse.
pub fn gguf_name(hf: &str, spec: &GgufSpec) -> Option<String> {
    let global = [("model.embed_tokens", "token_embd"), ("model.norm", "output_norm"), ("lm_head", "output")];
    let (stem, suffix) = hf.rsplit_once('.')?;
    if let Some((_, g)) = global.iter().find(|(h, _)| *h == stem) {
        return Some(format!("{g}.{suffix}"));
    }
    let (layer, part) = stem.strip_prefix("model.layers.")?.split_once('.')?;
    let own = spec.tensors.iter().find(|(_, h)| *h == part).map(|(g, _)| g.as_str());
    let g = own.or_else(|| LAYER_NAMES.iter().find(|(_, h)| *h == part).map(|(g, _)| *g))?;
    Some(format!("blk.{layer}.{g}.{suffix}"))
}

/// Sets `config[a][b]…` for the dotted key `a.b…`, making objects on the way.
fn set_path(config: &mut Value, key: &str, value: Value) {
    let mut node = config;
    for part in key.split('.') {
        if !node.is_object() {
            *node = json!({});
        }
        node = node.as_object_mut().expect("made an object").entry(part).or_insert(Value::Null);
    }
    *node = value;
}

struct GgufWeights {
    file: GgufFile,
    /// HF name -> (tensor index, heads to un-permute rows by)
    index: BTreeMap<String, (usize, Option<usize>)>,
    infos: BTreeMap<String, TensorInfo>,
}

impl Weights for GgufWeights {
    fn tensors(&self) -> &BTreeMap<String, TensorInfo> {
        &self.infos
    }

    fn read_f32(&self, name: &str) -> Result<Vec<f32>> {
        let (i, heads) = self.index[name];
        let t = &self.file.tensors[i];
        self.unpermuted(t, heads, blocks::dequantize(t.type_id, &self.file.map[t.start..t.end]))
    }

    fn read_raw(&self, name: &str) -> Result<Vec<u8>> {
        let (i, heads) = self.index[name];
        let t = &self.file.tensors[i];
        // whole rows move, so blocks within a row stay intact
        self.unpermuted(t, heads, self.file.map[t.start..t.end].to_vec())
    }
}

impl GgufWeights {
    /// A Q or K projection's rows (values or bytes) in transformers' order, for `heads` heads.
    fn unpermuted<T: Copy + Default>(&self, t: &TensorRecord, heads: Option<usize>, x: Vec<T>) -> Result<Vec<T>> {
        let Some(heads) = heads else { return Ok(x) };
        let rows = t.dims.last().copied().unwrap_or(0); // a matrix's rows, or a bias's length
        if heads == 0 || rows == 0 || rows % (2 * heads) != 0 {
            return Err(Error::Format { path: self.file.path.clone(), detail: format!("tensor '{}' of shape {:?} does not split into {heads} heads", t.name, t.dims) });
        }
        Ok(reorder_heads(&x, heads, rows, x.len() / rows, false))
    }
}

/// llama.cpp stores Q/K rows of each head interleaved (pairs); transformers' layout is halves.
/// GGUF row (head, d, two) holds HF row (head, two, d): rows of `cols` values (or bytes) moved
/// into transformers' order, or (`to_gguf`) into llama.cpp's.
pub fn reorder_heads<T: Copy + Default>(x: &[T], heads: usize, rows: usize, cols: usize, to_gguf: bool) -> Vec<T> {
    let half = rows / heads / 2;
    let mut out = vec![T::default(); x.len()];
    for h in 0..heads {
        for d in 0..half {
            for two in 0..2 {
                let (gguf, hf) = (h * 2 * half + d * 2 + two, h * 2 * half + two * half + d);
                let (src, dst) = if to_gguf { (hf, gguf) } else { (gguf, hf) };
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&x[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

pub fn load(path: &Path) -> Result<ModelSource> {
    let file = GgufFile::open(path)?;
    let name = file.path.clone();
    let arch = file.get("general.architecture").and_then(Value::as_str).unwrap_or("").to_string();
    let (hf_class, spec) = graph_for_gguf(&arch)?;
    let key = |k: &str| file.get(&format!("{arch}.{k}")).cloned();
    let n_vocab = file.get("tokenizer.ggml.tokens").and_then(Value::as_array).map(|a| a.len());
    let tied = !file.tensors.iter().any(|t| t.name == "output.weight");
    let mut config = json!({
        "architectures": [hf_class],
        "model_type": arch,
        "hidden_size": key("embedding_length"),
        "intermediate_size": key("feed_forward_length"),
        "num_hidden_layers": key("block_count"),
        "num_attention_heads": key("attention.head_count"),
        "num_key_value_heads": key("attention.head_count_kv"),
        "rms_norm_eps": key("attention.layer_norm_rms_epsilon"),
        "rope_theta": key("rope.freq_base"),
        "max_position_embeddings": key("context_length"),
        "vocab_size": key("vocab_size").or(n_vocab.map(Value::from)),
        "tie_word_embeddings": tied,
    });
    // the rope dimensions are the head's, unless the graph reads them itself (partial rotary)
    let own_rope_dims = spec.config.values().any(|k| k == "rope.dimension_count");
    if let (Some(dim), Some(h), Some(heads), false) = (key("rope.dimension_count"), key("embedding_length"), key("attention.head_count"), own_rope_dims) {
        if dim.as_u64() != h.as_u64().zip(heads.as_u64()).map(|(h, n)| h / n.max(1)) {
            config["head_dim"] = dim;
        }
    }
    for (config_key, meta_key) in &spec.config {
        if let Some(v) = key(meta_key) {
            set_path(&mut config, config_key, v);
        }
    }
    let heads = config["num_attention_heads"].as_u64().unwrap_or(1) as usize;
    let kv_heads = config["num_key_value_heads"].as_u64().map(|x| x as usize).unwrap_or(heads);

    let mut index = BTreeMap::new();
    let mut infos = BTreeMap::new();
    for (i, t) in file.tensors.iter().enumerate() {
        if let Some(config_key) = spec.tensor_config.get(&t.name) {
            let values = blocks::dequantize(t.type_id, &file.map[t.start..t.end]);
            set_path(&mut config, config_key, values.into_iter().map(|x| x as f64).collect());
            continue;
        }
        let hf = hf_name(&t.name, &spec)
            .ok_or_else(|| Error::Format { path: name.clone(), detail: format!("tensor '{}' has no place in Kiln's {arch} graph", t.name) })?;
        let projection = hf.rsplit_once('.').map_or("", |(stem, _)| stem);
        let permuted = match () {
            _ if !spec.permuted_qk => None,
            _ if projection.ends_with("q_proj") => Some(heads),
            _ if projection.ends_with("k_proj") => Some(kv_heads),
            _ => None,
        };
        let (tyname, _, _) = blocks::type_info(t.type_id).unwrap();
        infos.insert(hf.clone(), TensorInfo { shape: t.dims.iter().rev().copied().collect(), dtype: tyname.into() });
        index.insert(hf, (i, permuted));
    }

    let style = tokenizer::SentencePiece::from_name(spec.sentencepiece.as_deref())
        .ok_or_else(|| Error::Graph { arch: arch.clone(), detail: format!("unknown sentencepiece style {:?}", spec.sentencepiece) })?;
    let (tokenizer_json, bos_by_default) = tokenizer::build(&file.meta, &name, style)?;
    let tokens = file.get("tokenizer.ggml.tokens").and_then(Value::as_array).cloned().unwrap_or_default();
    let token = |k: &str| file.get(k).and_then(Value::as_u64).and_then(|i| tokens.get(i as usize)).and_then(Value::as_str).map(String::from);
    let eos_id = file.get("tokenizer.ggml.eos_token_id").and_then(Value::as_u64);
    let special = [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id")];
    // tokenizer.chat_template is the default; tokenizer.chat_template.NAME the named ones
    let chat_templates = file
        .meta
        .iter()
        .filter_map(|(k, v)| {
            let name = if k == "tokenizer.chat_template" { "default" } else { k.strip_prefix("tokenizer.chat_template.")? };
            Some((name.to_string(), v.as_str()?.to_string()))
        })
        .collect();
    let gguf_tokenizer = file.meta.iter().filter(|(k, _)| k.starts_with("tokenizer.ggml.")).map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(ModelSource {
        path: name,
        chat_templates,
        special_tokens: special.into_iter().filter_map(|(k, id)| Some((k.to_string(), token(&format!("tokenizer.ggml.{id}"))?))).collect(),
        add_bos: file.get("tokenizer.ggml.add_bos_token").and_then(Value::as_bool).unwrap_or(bos_by_default),
        config,
        weights: Box::new(GgufWeights { file, index, infos }),
        tokenizer_json,
        generation: Default::default(),
        eos_token_ids: eos_id.map(|i| vec![i as u32]).unwrap_or_default(),
        offsets_applied: spec.offsets_applied,
        gguf_tokenizer,
    })
}
