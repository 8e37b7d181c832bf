//! Every reader that takes outside bytes, driven from one byte string: the fuzz targets
//! (tests/fuzz, `make fuzz`) and the regression tests of what they found
//! (tests/tests/fuzz_regressions.rs) call these same functions. Each must end in Ok or a clean
//! error: never a panic, a hang, or an allocation out of proportion to its input. Each returns
//! whether the input was read whole (so a test can tell that valid input gets past every check).
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{json, Value};

/// Where an input with two parts (a file and its config, a template and its messages) is cut.
pub const SEPARATOR: &[u8] = b"\n\0KILN-FUZZ\0\n";

/// The parts of `data` before and after the first SEPARATOR (all of it and nothing, without one).
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        Some(i) => (&data[..i], &data[i + SEPARATOR.len()..]),
        None => (data, &[]),
    }
}

thread_local! {
    /// A folder of this thread's own for the files an input becomes (a file still mapped by
    /// another thread must not be rewritten under it).
    static SCRATCH: tempfile::TempDir = tempfile::Builder::new().prefix("kiln-fuzz-").tempdir().unwrap();
}

fn scratch() -> PathBuf {
    SCRATCH.with(|dir| dir.path().to_path_buf())
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// What a loaded model offers a user: every tensor's values, the graph bound to its config.
fn use_model(source: &compiler::source::ModelSource) -> bool {
    let tensors = source.weights.tensors().keys().filter(|name| source.weights.read_f32(name).is_ok()).count();
    compiler::compile::analyse(&source.config).is_ok() && tensors == source.weights.tensors().len()
}

/// A GGUF file: header, metadata, tensor table, block data; then its tokenizer and config.
pub fn gguf(data: &[u8]) -> bool {
    compiler::load_model(&write("model.gguf", data)).is_ok_and(|source| use_model(&source))
}

/// A Hugging Face folder: config.json | SEPARATOR | model.safetensors (with a fixed tokenizer.json).
pub fn safetensors_folder(data: &[u8]) -> bool {
    let (config, weights) = split(data);
    let dir = scratch().join("folder");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
    std::fs::write(dir.join("model.safetensors"), weights).unwrap();
    std::fs::write(dir.join("tokenizer.json"), include_str!("fixtures/llama_tied_gqa/tokenizer.json")).unwrap();
    compiler::load_model(&dir).is_ok_and(|source| use_model(&source))
}

/// An artifact, its length and checksum fields made to match (so the reader gets past them):
/// sections, metadata JSON, its tokenizer, config and chat template. Its kernels are native code,
/// trusted like any program, and are not run.
pub fn artifact(data: &[u8]) -> bool {
    let mut bytes = data.to_vec();
    if bytes.len() >= runtime::artifact::HEADER_LEN {
        let len = bytes.len() as u64;
        bytes[64..72].copy_from_slice(&len.to_le_bytes());
        let crc = crc32fast::hash(&bytes[runtime::artifact::HEADER_LEN..]);
        bytes[72..76].copy_from_slice(&crc.to_le_bytes());
    }
    let path = write("model.kiln", &bytes);
    let Ok(artifact) = runtime::artifact::Artifact::open(&path, false) else { return false };
    let tokenizer = runtime::tokenizer::Tokenizer::for_artifact(&artifact.meta).is_ok();
    let info = compiler::info::load(&path).is_ok();
    let messages = [json!({"role": "user", "content": "hi"})];
    let prompt = runtime::prompt::render(&artifact.meta, &messages, &Default::default()).is_ok();
    tokenizer && info && prompt
}

/// A graph JSON | SEPARATOR | config.json: parsed, bound, unrolled, shape-checked, fused.
pub fn graph(data: &[u8]) -> bool {
    let (graph, config) = split(data);
    let (Ok(graph), Ok(config)) = (std::str::from_utf8(graph), serde_json::from_slice::<Value>(config)) else { return false };
    let Ok(json) = compiler::graph::parse("fuzz", graph) else { return false };
    let Ok(bound) = compiler::bind::bind(&json, &config) else { return false };
    let Ok(unrolled) = compiler::unroll::unroll(&json, &bound) else { return false };
    !compiler::fuse::fuse(&unrolled.graph).is_empty()
}

/// A chat template | SEPARATOR | its variables (a JSON object, or a list of messages).
pub fn chat_template(data: &[u8]) -> bool {
    let (source, vars) = split(data);
    let Ok(source) = std::str::from_utf8(source) else { return false };
    let vars = match serde_json::from_slice::<Value>(vars) {
        Ok(Value::Object(map)) => Value::Object(map),
        Ok(messages @ Value::Array(_)) => json!({"messages": messages, "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"}),
        _ => json!({"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": true}),
    };
    let now = runtime::chat_template::DateTime::parse("2026-01-15T09:30:00");
    runtime::chat_template::ChatTemplate::new(source, now).is_ok_and(|template| template.render(&vars).is_ok())
}

/// Token ids (u32, little-endian): decoded whole and streamed one by one; the bytes as text, encoded.
pub fn tokenizer(data: &[u8]) -> bool {
    static TOKENIZER: OnceLock<runtime::tokenizer::Tokenizer> = OnceLock::new();
    let tok = TOKENIZER.get_or_init(|| runtime::tokenizer::Tokenizer::new(include_str!("fixtures/llama_tied_gqa/tokenizer.json"), None, false).unwrap());
    let ids: Vec<u32> = data.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap()) % (tok.vocab_size() as u32 + 8)).collect();
    let whole = tok.decode(&ids).is_ok();
    let mut stream = runtime::tokenizer::StreamDecoder::new();
    let streamed = ids.iter().filter(|&&id| stream.push(tok, id).is_ok()).count() == ids.len();
    let encoded = tok.encode(&String::from_utf8_lossy(data)).is_ok();
    whole && streamed && encoded
}
