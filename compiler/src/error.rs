use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{0}")]
    Model(String),
    #[error("config.json: {0}")]
    Config(String),
    #[error("graph '{arch}': {detail}")]
    Graph { arch: String, detail: String },
    #[error("unknown architecture '{0}' (Kiln knows: {1})")]
    UnknownArchitecture(String, String),
    #[error("{path}: {detail}")]
    Format { path: String, detail: String },
    #[error("LLVM: {0}")]
    Llvm(String),
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |err| Error::Io { path: path.display().to_string(), err }
}
