//! A Hugging Face model folder: config.json, *.safetensors (sharded or not), tokenizer.json,
//! tokenizer_config.json / chat_template.jinja, generation_config.json.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use runtime::artifact::GenerationDefaults;
use serde_json::Value;

use crate::error::{io, Error, Result};
use crate::source::{ids, ModelSource, TensorInfo, Weights};

struct Shard {
    map: memmap2::Mmap,
    data_start: usize,
}

struct SafetensorsWeights {
    shards: Vec<Shard>,
    /// name -> (shard, byte range in its data section)
    index: BTreeMap<String, (usize, usize, usize)>,
    infos: BTreeMap<String, TensorInfo>,
}

impl SafetensorsWeights {
    fn bytes(&self, name: &str) -> &[u8] {
        let (s, start, end) = self.index[name];
        let shard = &self.shards[s];
        &shard.map[shard.data_start + start..shard.data_start + end]
    }
}

impl Weights for SafetensorsWeights {
    fn tensors(&self) -> &BTreeMap<String, TensorInfo> {
        &self.infos
    }

    fn read_raw(&self, name: &str) -> Result<Vec<u8>> {
        Ok(self.bytes(name).to_vec())
    }

    fn read_f32(&self, name: &str) -> Result<Vec<f32>> {
        let bytes = self.bytes(name);
        let dtype = self.infos[name].dtype.as_str();
        Ok(match dtype {
            "F32" => bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
            "F16" => bytes.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            "BF16" => bytes.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            other => return Err(Error::Model(format!("tensor '{name}': unsupported safetensors dtype {other}"))),
        })
    }
}

fn open_shard(path: &Path, shards: &mut Vec<Shard>, index: &mut BTreeMap<String, (usize, usize, usize)>, infos: &mut BTreeMap<String, TensorInfo>) -> Result<()> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    // SAFETY: read-only map of a file we do not modify.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io(path))?;
    let bad = |detail: String| Error::Format { path: path.display().to_string(), detail };
    // Full validation (header, offsets, sizes), then keep only the owned metadata.
    safetensors::SafeTensors::deserialize(&map).map_err(|e| bad(format!("truncated or corrupt safetensors file ({e})")))?;
    let (header_len, meta) = safetensors::SafeTensors::read_metadata(&map).map_err(|e| bad(e.to_string()))?;
    for (name, info) in meta.tensors() {
        let (start, end) = info.data_offsets;
        index.insert(name.clone(), (shards.len(), start, end));
        infos.insert(name, TensorInfo { shape: info.shape.clone(), dtype: format!("{:?}", info.dtype) });
    }
    shards.push(Shard { map, data_start: 8 + header_len });
    Ok(())
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|e| Error::Format { path: path.display().to_string(), detail: format!("invalid JSON: {e}") })
}

fn optional_json(path: &Path) -> Result<Option<Value>> {
    if path.exists() { read_json(path).map(Some) } else { Ok(None) }
}

/// A special token given as a string or as {"content": …}.
fn token_text(v: &Value) -> Option<String> {
    v.as_str().map(String::from).or_else(|| v.get("content").and_then(Value::as_str).map(String::from))
}

/// Chat templates by name: tokenizer_config.json's (a string = "default", or a named list),
/// with chat_template.jinja as "default" when present (transformers prefers the file).
fn chat_templates(dir: &Path, tokenizer_config: &Value) -> Result<BTreeMap<String, String>> {
    let mut templates = BTreeMap::new();
    match &tokenizer_config["chat_template"] {
        Value::String(s) => {
            templates.insert("default".to_string(), s.clone());
        }
        Value::Array(list) => {
            for t in list {
                if let (Some(name), Some(text)) = (t["name"].as_str(), t["template"].as_str()) {
                    templates.insert(name.to_string(), text.to_string());
                }
            }
        }
        _ => {}
    }
    let file = dir.join("chat_template.jinja");
    if file.exists() {
        templates.insert("default".to_string(), std::fs::read_to_string(&file).map_err(io(&file))?);
    }
    Ok(templates)
}

pub fn load(dir: &Path) -> Result<ModelSource> {
    let name = dir.display().to_string();
    if !dir.is_dir() {
        return Err(Error::Model(format!("{name}: no such model folder or file")));
    }
    let config_path = dir.join("config.json");
    if !config_path.exists() {
        return Err(Error::Model(format!("{name}: no config.json (is this a Hugging Face model folder?)")));
    }
    let config = read_json(&config_path)?;
    let tok_path = dir.join("tokenizer.json");
    if !tok_path.exists() {
        return Err(Error::Model(format!("{name}: no tokenizer.json")));
    }
    let tokenizer_json = std::fs::read_to_string(&tok_path).map_err(io(&tok_path))?;

    let index_path = dir.join("model.safetensors.index.json");
    let files: Vec<PathBuf> = if index_path.exists() {
        let index = read_json(&index_path)?;
        let mut files: Vec<String> = index["weight_map"].as_object().map(|m| m.values().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default();
        files.sort();
        files.dedup();
        files.into_iter().map(|f| dir.join(f)).collect()
    } else {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir).map_err(io(dir))?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "safetensors")).collect();
        files.sort();
        files
    };
    if files.is_empty() {
        return Err(Error::Model(format!("{name}: no *.safetensors weights")));
    }
    let (mut shards, mut index, mut infos) = (vec![], BTreeMap::new(), BTreeMap::new());
    for f in &files {
        open_shard(f, &mut shards, &mut index, &mut infos)?;
    }

    let tokenizer_config = optional_json(&dir.join("tokenizer_config.json"))?.unwrap_or(Value::Null);
    let gen = optional_json(&dir.join("generation_config.json"))?.unwrap_or(Value::Null);
    let generation = GenerationDefaults {
        temperature: gen["temperature"].as_f64().map(|x| x as f32),
        top_k: gen["top_k"].as_u64().map(|x| x as usize),
        top_p: gen["top_p"].as_f64().map(|x| x as f32),
        repetition_penalty: gen["repetition_penalty"].as_f64().map(|x| x as f32),
    };
    let mut eos_token_ids = ids(&gen["eos_token_id"]);
    eos_token_ids.extend(ids(&config["eos_token_id"]));
    let weights = crate::mlx::wrap(&config, Box::new(SafetensorsWeights { shards, index, infos }))?;
    Ok(ModelSource {
        path: name,
        chat_templates: chat_templates(dir, &tokenizer_config)?,
        special_tokens: ["bos_token", "eos_token", "unk_token", "pad_token"]
            .into_iter()
            .filter_map(|k| Some((k.to_string(), token_text(&tokenizer_config[k])?)))
            .collect(),
        add_bos: tokenizer_config["add_bos_token"].as_bool().unwrap_or(false),
        config,
        weights,
        tokenizer_json,
        generation,
        eos_token_ids,
        offsets_applied: false,
        gguf_tokenizer: BTreeMap::new(),
    })
}
