//! A model as an MLX folder, as `mlx_lm.convert` writes one: config.json (with `quantization`,
//! per module where modules differ), model.safetensors under Hugging Face names (a quantised
//! module as `weight` u32 words, `scales`, `biases`), tokenizer.json, tokenizer_config.json
//! (special tokens, chat template), generation_config.json.
use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::{tensor_bytes, tensor_format};
use crate::error::{io, Error, Result};
use crate::lower::weight_format::WeightFormat;
use crate::mlx::affine::{Affine, ScaleType};
use crate::source::ModelSource;

/// `bits` and `group` quantise every matrix whose rows are whole groups; without them, MLX
/// formats are kept and other matrices written as they are stored (block formats as f16).
pub fn write(source: &ModelSource, quant: Option<(u64, u64)>, out: &Path) -> Result<()> {
    let quant = match quant {
        Some((bits, group)) => Some(Affine::new(bits, group, scale_type(&source.config)).ok_or_else(|| Error::Model(format!("MLX quantisation of {bits} bits in groups of {group} is not supported (bits 2, 3, 4, 5, 6, 8; groups 32, 64, 128)")))?),
        None => None,
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let (tensors, modules) = tensors(source, quant)?;
    let views = tensors
        .iter()
        .map(|(n, dtype, shape, bytes)| Ok((n.clone(), safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes).map_err(|e| Error::Model(format!("tensor '{n}': {e}")))?)))
        .collect::<Result<Vec<_>>>()?;
    let weights = out.join("model.safetensors");
    let metadata = Some(std::collections::HashMap::from([("format".to_string(), "mlx".to_string())]));
    safetensors::serialize_to_file(views, metadata, &weights).map_err(|e| Error::Model(format!("{}: {e}", weights.display())))?;
    write_json(&out.join("config.json"), &config(source, modules))?;
    std::fs::write(out.join("tokenizer.json"), &source.tokenizer_json).map_err(io(out))?;
    write_json(&out.join("tokenizer_config.json"), &tokenizer_config(source))?;
    if !source.eos_token_ids.is_empty() {
        write_json(&out.join("generation_config.json"), &json!({"eos_token_id": source.eos_token_ids}))?;
    }
    Ok(())
}

/// (name, dtype, shape, bytes)
type Tensor = (String, safetensors::Dtype, Vec<usize>, Vec<u8>);

/// Every tensor as MLX stores it (a quantised module as its three), and each quantised module's
/// `quantization` entry. Gemma's norm gains lose the 1 a GGUF source added.
fn tensors(source: &ModelSource, quant: Option<Affine>) -> Result<(Vec<Tensor>, Map<String, Value>)> {
    let (mut tensors, mut modules) = (vec![], Map::new());
    for (name, info) in source.weights.tensors() {
        let offset = if source.offsets_applied && name.ends_with("norm.weight") { -1.0 } else { 0.0 };
        let format = if info.shape.len() == 2 {
            tensor_format(info, quant.map(WeightFormat::Affine), |f| matches!(f, WeightFormat::F32 | WeightFormat::F16 | WeightFormat::BF16 | WeightFormat::Affine(_)))
        } else {
            WeightFormat::from_name(&info.dtype).filter(|f| matches!(f, WeightFormat::F16 | WeightFormat::BF16)).unwrap_or(WeightFormat::F32)
        };
        let bytes = tensor_bytes(source, name, format, offset)?;
        let WeightFormat::Affine(a) = format else {
            tensors.push((name.clone(), dtype(format), info.shape.clone(), bytes));
            continue;
        };
        let module = name.strip_suffix(".weight").ok_or_else(|| Error::Model(format!("tensor '{name}': MLX quantises only module weights")))?;
        let (rows, cols) = (info.shape[0], info.shape[1]);
        let (packed, scales, biases) = a.split(&bytes);
        let scale = dtype(match a.scale {
            ScaleType::F32 => WeightFormat::F32,
            ScaleType::F16 => WeightFormat::F16,
            ScaleType::BF16 => WeightFormat::BF16,
        });
        let groups = cols / a.group as usize;
        tensors.push((name.clone(), safetensors::Dtype::U32, vec![rows, cols * a.bits as usize / 32], packed));
        tensors.push((format!("{module}.scales"), scale, vec![rows, groups], scales));
        tensors.push((format!("{module}.biases"), scale, vec![rows, groups], biases));
        modules.insert(module.to_string(), json!({"group_size": a.group, "bits": a.bits, "mode": "affine"}));
    }
    Ok((tensors, modules))
}

fn dtype(format: WeightFormat) -> safetensors::Dtype {
    match format {
        WeightFormat::F16 => safetensors::Dtype::F16,
        WeightFormat::BF16 => safetensors::Dtype::BF16,
        _ => safetensors::Dtype::F32,
    }
}

/// Scales and biases in the model's own float type (config `dtype` / `torch_dtype`), else f32.
fn scale_type(config: &Value) -> ScaleType {
    match config["dtype"].as_str().or(config["torch_dtype"].as_str()) {
        Some("bfloat16") => ScaleType::BF16,
        Some("float16") => ScaleType::F16,
        _ => ScaleType::F32,
    }
}

/// config.json with `quantization` (the most common bits and group as the default, modules
/// quantised otherwise named; mlx_lm quantises the modules that have scales), and `rope_theta` spelled at the top as mlx_lm reads it.
fn config(source: &ModelSource, modules: Map<String, Value>) -> Value {
    let mut config = source.config.clone();
    let c = config.as_object_mut().expect("config.json is an object");
    c.remove("quantization");
    c.remove("quantization_config");
    let theta = c.get("rope_parameters").and_then(|r| r.get("full_attention").unwrap_or(r).get("rope_theta")).cloned();
    if let (None, Some(theta)) = (c.get("rope_theta"), theta) {
        c.insert("rope_theta".into(), theta);
    }
    if !modules.is_empty() {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        modules.values().for_each(|m| *counts.entry(m.to_string()).or_default() += 1);
        let common = counts.into_iter().max_by_key(|(_, n)| *n).map(|(m, _)| m).unwrap_or_default();
        let mut q: Map<String, Value> = serde_json::from_str::<Map<String, Value>>(&common).unwrap_or_default();
        q.extend(modules.into_iter().filter(|(_, m)| m.to_string() != common));
        c.insert("quantization".into(), Value::Object(q.clone()));
        c.insert("quantization_config".into(), Value::Object(q));
    }
    config
}

fn tokenizer_config(source: &ModelSource) -> Value {
    let mut t = Map::new();
    for (k, v) in &source.special_tokens {
        t.insert(k.clone(), json!(v));
    }
    t.insert("add_bos_token".into(), json!(source.add_bos));
    if let Some(template) = source.chat_templates.get("default") {
        t.insert("chat_template".into(), json!(template));
    }
    Value::Object(t)
}

fn write_json(path: &Path, v: &Value) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(v).expect("JSON values serialise")).map_err(io(path))
}
