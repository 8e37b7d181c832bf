//! `kiln`: compile models into artifacts, run and chat with them, inspect them. The commands that
//! run artifacts are runtime::cli's (also in `kiln-rt`, the runtime-only build).
mod cli;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "kiln", version, about = "Graph-compiled LLM inference on the CPU")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile a model (Hugging Face folder, GGUF file, or org/name from the HF cache) into an artifact.
    Compile(cli::compile::CompileArgs),
    /// Write a model (Hugging Face folder, GGUF file, MLX folder) as a GGUF file or an MLX folder.
    Convert(cli::convert::ConvertArgs),
    /// Describe a model or artifact: sizes, costs per token, the fused graph.
    Info(runtime::cli::info::InfoArgs),
    #[command(flatten)]
    Runtime(runtime::cli::Command),
}

/// The tokenizer of an artifact, a Hugging Face folder or a GGUF file.
fn tokenizer(path: &std::path::Path) -> anyhow::Result<runtime::tokenizer::Tokenizer> {
    if runtime::artifact::Artifact::is_artifact(path) {
        return runtime::cli::tokenize::artifact_tokenizer(path);
    }
    let s = compiler::load_model(path)?;
    Ok(runtime::tokenizer::Tokenizer::new(&s.tokenizer_json, s.special_tokens.get("bos_token").map(String::as_str), s.add_bos)?)
}

fn main() {
    let result = match runtime::cli::parse::<Cli>("kiln").command {
        Command::Compile(a) => cli::compile::compile(a),
        Command::Convert(a) => cli::convert::convert(a),
        Command::Info(a) => cli::info::info(a),
        Command::Runtime(c) => c.run(tokenizer),
    };
    runtime::cli::exit_on_error("kiln", result);
}
