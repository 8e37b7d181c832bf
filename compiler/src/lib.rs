//! The Kiln compiler: graph JSON + a model -> one native artifact.
pub mod bind;
pub mod compile;
pub mod convert;
pub mod error;
pub mod fuse;
pub mod gguf;
pub mod graph;
pub mod hf;
pub mod hf_cache;
pub mod info;
pub mod lower;
pub mod memory;
pub mod mlx;
pub mod quantize;
pub mod repack;
pub mod rope_table;
pub mod schedule;
pub mod source;
pub mod storage;
pub mod unroll;

pub use error::{Error, Result};

/// Loads a model: a Hugging Face folder, a GGUF file, or `org/name` from the local HF cache.
pub fn load_model(path: &std::path::Path) -> Result<source::ModelSource> {
    if !path.exists() {
        let spec = path.to_string_lossy();
        if hf_cache::is_hub_id(&spec) {
            return hf::load(&hf_cache::resolve(&spec, &hf_cache::cache_dir())?);
        }
        return Err(Error::Model(format!("{}: no such file or folder", path.display())));
    }
    if path.is_dir() { hf::load(path) } else { gguf::load(path) }
}
