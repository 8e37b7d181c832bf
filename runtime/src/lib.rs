//! The Kiln runtime: maps an artifact, loads its kernels and runs the model. No LLVM here.
pub mod artifact;
pub mod buffer;
pub mod chat_template;
pub mod cli;
pub mod cpu;
pub mod decoder;
pub mod error;
pub mod info;
pub mod executor;
pub mod kernels;
pub mod kv_cache;
pub mod model;
pub mod perplexity;
pub mod plan;
pub mod pool;
pub mod prompt;
pub mod sampler;
pub mod serve;
pub mod session;
pub mod stop;
pub mod tags;
pub mod tokenizer;

pub use error::{Error, Result};
pub use model::Model;
