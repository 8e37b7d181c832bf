//! `kiln-rt`: the runtime-only build of `kiln` — run, chat, serve, info, tokenize… on compiled
//! artifacts, without the compiler and without LLVM: `cargo build --release -p kiln-runtime --bin kiln-rt`.
use clap::{Parser, Subcommand};
use runtime::cli;

#[derive(Parser)]
#[command(name = "kiln-rt", version, about = "Run compiled Kiln artifacts (the runtime-only build of kiln)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Describe an artifact: sizes, costs per token, its kernels and target.
    Info(cli::info::InfoArgs),
    #[command(flatten)]
    Runtime(cli::Command),
}

fn main() {
    let result = match cli::parse::<Cli>("kiln-rt").command {
        Command::Info(a) => cli::info::artifact_report(&a).and_then(|r| cli::info::print(&r, a.json)),
        Command::Runtime(c) => c.run(cli::tokenize::artifact_tokenizer),
    };
    cli::exit_on_error("kiln-rt", result);
}
