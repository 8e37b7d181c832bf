use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{path}: not a Kiln artifact (bad magic)")]
    NotArtifact { path: String },
    #[error("{path}: artifact format version {found}, this Kiln reads version {expected}; recompile the model")]
    Version { path: String, found: u32, expected: u32 },
    #[error("{path}: truncated artifact ({found} bytes, header says {expected})")]
    Truncated { path: String, found: u64, expected: u64 },
    #[error("{path}: artifact is corrupt (checksum mismatch)")]
    Checksum { path: String },
    #[error("{path}: built for CPU features this machine lacks: {missing}; recompile it here (or with --target-cpu)")]
    CpuFeatures { path: String, missing: String },
    #[error("{path}: corrupt artifact metadata: {detail}")]
    Meta { path: String, detail: String },
    #[error("cannot load the artifact's kernels: {0}")]
    Kernels(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("this model has no chat template; use --no-chat")]
    NoChatTemplate,
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("the prompt has {tokens} tokens but the context holds {context}; shorten it or raise --ctx")]
    ContextFull { tokens: usize, context: usize },
    #[error("serve: {0}")]
    Serve(String),
    #[error("perplexity: {0}")]
    Perplexity(String),
    #[error("token id {id} is outside the vocabulary ({vocab})")]
    TokenId { id: u32, vocab: usize },
}

pub type Result<T> = std::result::Result<T, Error>;
