//! A model as a GGUF file, the way llama.cpp's converter writes one (python-trace/make_gguf_fixtures.py
//! does the same in Python): metadata under the graph's GGUF architecture, llama.cpp tensor names,
//! Q/K rows permuted where the architecture's rope layout wants it, Gemma's norms as 1 + w, rope
//! factors as tensors; the tokenizer and chat templates as `tokenizer.*` keys.
use std::path::Path;

use serde_json::Value;

use super::{config_path, tensor_bytes, tensor_format};
use crate::error::{Error, Result};
use crate::gguf::blocks::TYPES;
use crate::gguf::writer::{self, MetaValue, TensorPlan};
use crate::gguf::{gguf_name, reorder_heads, tokenizer};
use crate::graph::{GgufSpec, GraphJson};
use crate::lower::weight_format::WeightFormat;
use crate::source::ModelSource;

pub fn write(source: &ModelSource, quant: Option<WeightFormat>, out: &Path) -> Result<()> {
    let graph = crate::graph::for_config(&source.config)?;
    let spec = graph.gguf.clone().ok_or_else(|| Error::Model(format!("architecture {} has no GGUF form in Kiln's graph", graph.architecture)))?;
    let mut meta = metadata(source, &graph, &spec)?;
    meta.extend(tokenizer_metadata(source)?);
    let factors = rope_factor_tensors(&source.config, &spec)?;
    let weights = source.weights.tensors();
    let mut plans: Vec<TensorPlan> = factors.iter().map(|(n, v)| TensorPlan { name: n.clone(), shape: vec![v.len()], type_id: 0, bytes: 4 * v.len() as u64 }).collect();
    let mut hf_names = vec![];
    for (hf, info) in weights {
        let name = gguf_name(hf, &spec).ok_or_else(|| Error::Model(format!("tensor '{hf}' has no GGUF name in Kiln's {} graph", graph.architecture)))?;
        let format = if info.shape.len() == 2 { tensor_format(info, quant, |f| !matches!(f, WeightFormat::Affine(_))) } else { WeightFormat::F32 };
        let type_id = TYPES.iter().find(|t| t.1 == format.name()).map(|t| t.0).ok_or_else(|| Error::Model(format!("tensor '{hf}': {} has no GGUF type", format.name())))?;
        plans.push(TensorPlan { name, shape: info.shape.clone(), type_id, bytes: format.tensor_bytes(&info.shape) });
        hf_names.push((hf.clone(), format));
    }
    let heads = config_path(&source.config, "num_attention_heads").and_then(Value::as_u64).unwrap_or(1) as usize;
    let kv_heads = config_path(&source.config, "num_key_value_heads").and_then(Value::as_u64).map_or(heads, |x| x as usize);
    let add_offset = spec.offsets_applied && !source.offsets_applied;
    writer::write(out, &meta, &plans, &mut |i| {
        if let Some((_, values)) = factors.get(i) {
            return Ok(values.iter().flat_map(|x| x.to_le_bytes()).collect());
        }
        let (hf, format) = &hf_names[i - factors.len()];
        let shape = &weights[hf].shape;
        let offset = if add_offset && hf.ends_with("norm.weight") { 1.0 } else { 0.0 };
        let mut bytes = tensor_bytes(source, hf, *format, offset)?;
        let heads = match () {
            _ if !spec.permuted_qk => None,
            _ if hf.contains(".q_proj.") => Some(heads),
            _ if hf.contains(".k_proj.") => Some(kv_heads),
            _ => None,
        };
        if let Some(heads) = heads {
            let rows = shape[0];
            bytes = reorder_heads(&bytes, heads, rows, bytes.len() / rows, true);
        }
        Ok(bytes)
    })
}

/// The tokenizer and chat templates: a GGUF source's tokenizer as it was (sentencepiece
/// vocabularies and scores included), else made from tokenizer.json.
fn tokenizer_metadata(source: &ModelSource) -> Result<Vec<(String, MetaValue)>> {
    let mut meta = vec![];
    if source.gguf_tokenizer.is_empty() {
        meta.extend(tokenizer::gguf_metadata(&source.tokenizer_json).map_err(Error::Model)?);
        meta.extend(special_tokens(source)?);
    } else {
        meta.extend(source.gguf_tokenizer.iter().map(|(k, v)| (k.clone(), meta_value(v))));
    }
    for (name, template) in &source.chat_templates {
        let key = if name == "default" { "tokenizer.chat_template".to_string() } else { format!("tokenizer.chat_template.{name}") };
        meta.push((key, MetaValue::Str(template.clone())));
    }
    Ok(meta)
}

/// The rope factors llama.cpp keeps as tensors: Llama 3's divisors, Phi-3's longrope lists.
fn rope_factor_tensors(config: &Value, spec: &GgufSpec) -> Result<Vec<(String, Vec<f32>)>> {
    let rope = rope_parameters(config);
    let mut factors = vec![];
    for (name, key) in &spec.tensor_config {
        let values = match key.strip_prefix("rope_scaling.") {
            Some("freq_factors") if rope["rope_type"] == "llama3" => crate::rope_table::freq_factors(head_dim(config)? as usize, rope_theta(config), &rope)?,
            Some(k) => rope[k].as_array().map(|a| a.iter().filter_map(Value::as_f64).map(|x| x as f32).collect()).unwrap_or_default(),
            None => vec![],
        };
        if !values.is_empty() {
            factors.push((name.clone(), values));
        }
    }
    Ok(factors)
}

/// The rope parameters llama.cpp sees: the global layers' where kinds have their own.
fn rope_parameters(config: &Value) -> Value {
    let rope = config.get("rope_parameters").or_else(|| config.get("rope_scaling")).cloned().unwrap_or(Value::Null);
    rope.get("full_attention").cloned().unwrap_or(rope)
}

fn rope_theta(config: &Value) -> f64 {
    rope_parameters(config)["rope_theta"].as_f64().or(config["rope_theta"].as_f64()).unwrap_or(10000.0)
}

fn head_dim(config: &Value) -> Result<u32> {
    let need = |key: &str| config[key].as_u64().ok_or_else(|| Error::Config(format!("{key} is missing")));
    Ok(match config["head_dim"].as_u64() {
        Some(d) => d,
        None => need("hidden_size")? / need("num_attention_heads")?.max(1),
    } as u32)
}

/// The architecture's metadata keys from the config.
fn metadata(source: &ModelSource, graph: &GraphJson, spec: &GgufSpec) -> Result<Vec<(String, MetaValue)>> {
    let c = &source.config;
    let arch = &spec.architecture;
    let need = |key: &str| config_path(c, key).and_then(Value::as_u64).map(|v| v as u32).ok_or_else(|| Error::Config(format!("{key} is missing")));
    let rope = rope_parameters(c);
    let heads = need("num_attention_heads")?;
    let partial = rope["partial_rotary_factor"].as_f64().or(c["partial_rotary_factor"].as_f64()).unwrap_or(1.0);
    let mut meta = vec![
        ("general.architecture".to_string(), MetaValue::Str(arch.clone())),
        ("general.name".to_string(), MetaValue::Str(Path::new(&source.path).file_stem().map_or("model".into(), |s| s.to_string_lossy().into_owned()))),
        (format!("{arch}.context_length"), MetaValue::U32(need("max_position_embeddings")?)),
        (format!("{arch}.embedding_length"), MetaValue::U32(need("hidden_size")?)),
        (format!("{arch}.block_count"), MetaValue::U32(need("num_hidden_layers")?)),
        (format!("{arch}.feed_forward_length"), MetaValue::U32(need("intermediate_size")?)),
        (format!("{arch}.attention.head_count"), MetaValue::U32(heads)),
        (format!("{arch}.attention.head_count_kv"), MetaValue::U32(need("num_key_value_heads").unwrap_or(heads))),
        (format!("{arch}.rope.dimension_count"), MetaValue::U32((head_dim(c)? as f64 * partial) as u32)),
        (format!("{arch}.attention.layer_norm_rms_epsilon"), MetaValue::F32(c["rms_norm_eps"].as_f64().unwrap_or(1e-6) as f32)),
        (format!("{arch}.rope.freq_base"), MetaValue::F32(rope_theta(c) as f32)),
        (format!("{arch}.vocab_size"), MetaValue::U32(need("vocab_size")?)),
    ];
    // the graph's own keys, on the config as llama.cpp sees it: one rope scaling, layer kinds as flags
    let mut view = c.clone();
    view["rope_scaling"] = rope;
    if let (Some(kinds), Some(types)) = (&graph.layer_kinds, c["layer_types"].as_array()) {
        view["sliding_window_pattern"] = types.iter().map(|t| Value::Bool(t.as_str() == kinds.kinds.first().map(String::as_str))).collect();
    }
    for (config_key, meta_key) in &spec.config {
        let key = format!("{arch}.{meta_key}");
        let Some(value) = config_path(&view, config_key).filter(|v| !v.is_null()) else { continue };
        if meta.iter().any(|(k, _)| *k == key) {
            continue;
        }
        meta.push((key, meta_value(value)));
    }
    Ok(meta)
}

/// A metadata value in the GGUF type llama.cpp uses for its JSON kind: integers u32 (i32 in
/// arrays), other numbers f32, lists of strings, integers, numbers or flags.
fn meta_value(v: &Value) -> MetaValue {
    let all = |a: &[Value], f: fn(&Value) -> bool| !a.is_empty() && a.iter().all(f);
    match v {
        Value::Bool(b) => MetaValue::Bool(*b),
        Value::Number(n) if n.is_u64() => MetaValue::U32(n.as_u64().unwrap_or(0) as u32),
        Value::Number(n) => MetaValue::F32(n.as_f64().unwrap_or(0.0) as f32),
        Value::Array(a) if all(a, Value::is_string) => MetaValue::Strs(a.iter().filter_map(Value::as_str).map(String::from).collect()),
        Value::Array(a) if all(a, Value::is_boolean) => MetaValue::Bools(a.iter().map(|v| v.as_bool().unwrap_or(false)).collect()),
        Value::Array(a) if all(a, |v| v.is_i64() || v.is_u64()) => MetaValue::I32s(a.iter().map(|v| v.as_i64().unwrap_or(0) as i32).collect()),
        Value::Array(a) => MetaValue::F32s(a.iter().map(|v| v.as_f64().unwrap_or(0.0) as f32).collect()),
        other => MetaValue::Str(other.as_str().map_or_else(|| other.to_string(), String::from)),
    }
}

/// bos/eos/unk/pad ids (by their text) and whether a BOS goes first.
fn special_tokens(source: &ModelSource) -> Result<Vec<(String, MetaValue)>> {
    let tok = runtime::tokenizer::Tokenizer::new(&source.tokenizer_json, None, false).map_err(|e| Error::Model(e.to_string()))?;
    let mut meta = vec![("tokenizer.ggml.add_bos_token".to_string(), MetaValue::Bool(source.add_bos))];
    for (key, id_key) in [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id")] {
        if let Some(id) = source.special_tokens.get(key).and_then(|t| tok.token_id(t)) {
            meta.push((format!("tokenizer.ggml.{id_key}"), MetaValue::U32(id)));
        }
    }
    Ok(meta)
}
