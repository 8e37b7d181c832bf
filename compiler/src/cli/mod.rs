//! The `kiln` command line, one file per command (and what commands share).
pub mod chat;
pub mod compile;
pub mod generate;
pub mod info;
pub mod perplexity;
pub mod run;
pub mod sampling;
pub mod template;
pub mod thinking;
pub mod tokenize;
