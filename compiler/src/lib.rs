//! The Kiln compiler: graph JSON + a model -> one native artifact.
pub mod bind;
pub mod compile;
pub mod error;
pub mod fuse;
pub mod gguf;
pub mod graph;
pub mod hf;
pub mod info;
pub mod lower;
pub mod memory;
pub mod schedule;
pub mod source;
pub mod unroll;

pub use error::{Error, Result};

/// Loads a model: a Hugging Face folder or a GGUF file.
pub fn load_model(path: &std::path::Path) -> Result<source::ModelSource> {
    if !path.exists() {
        return Err(Error::Model(format!("{}: no such file or folder", path.display())));
    }
    if path.is_dir() { hf::load(path) } else { gguf::load(path) }
}
