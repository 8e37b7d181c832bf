//! The Kiln compiler: graph JSON + a model -> one native artifact.
pub mod bind;
pub mod compile;
pub mod error;
pub mod fuse;
pub mod graph;
pub mod hf;
pub mod lower;
pub mod memory;
pub mod schedule;
pub mod source;
pub mod unroll;

pub use error::{Error, Result};

/// Loads a model from a Hugging Face folder (a GGUF file comes later in the pipeline).
pub fn load_model(path: &std::path::Path) -> Result<source::ModelSource> {
    if !path.exists() {
        return Err(Error::Model(format!("{}: no such file or folder", path.display())));
    }
    hf::load(path)
}
