//! `kiln`: compile models into artifacts, run and chat with them, inspect them.
mod cli;

use anyhow::Result;
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
    /// Answer one prompt (argument, --file, or standard input).
    Run(cli::run::RunArgs),
    /// Chat with a model, turn by turn.
    Chat(cli::chat::ChatArgs),
    /// Describe a model or artifact: sizes, costs per token, the fused graph.
    Info(cli::info::InfoArgs),
    /// Render a chat template file for a conversation, exactly as transformers would.
    Template(cli::template::TemplateArgs),
    /// Show the prompt a compiled model receives for a conversation.
    Prompt(cli::template::PromptArgs),
    /// Serve compiled models over an OpenAI-compatible HTTP API (the same as `kiln-serve`).
    Serve(runtime::serve::ServeArgs),
    /// Score a text file: the model's perplexity on it, window by window.
    Perplexity(cli::perplexity::PerplexityArgs),
    /// Split text into a model's tokens.
    Tokenize(cli::tokenize::TokenizeArgs),
    /// Turn token ids back into text.
    Detokenize(cli::tokenize::DetokenizeArgs),
}

fn main() {
    // `kiln … | head` ends quietly, as Unix tools do, instead of failing to print
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        use clap::error::ErrorKind::*;
        if matches!(e.kind(), DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand) {
            e.exit();
        }
        // clap's first line names the problem; its usage block is one `--help` away
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
        eprintln!("kiln: {first} (see kiln --help)");
        std::process::exit(2);
    });
    let result: Result<()> = match cli.command {
        Command::Compile(a) => cli::compile::compile(a),
        Command::Run(a) => cli::run::run(a),
        Command::Chat(a) => cli::chat::chat(a),
        Command::Info(a) => cli::info::info(a),
        Command::Template(a) => cli::template::template(a),
        Command::Prompt(a) => cli::template::prompt(a),
        Command::Perplexity(a) => cli::perplexity::perplexity(a),
        Command::Serve(a) => runtime::serve::serve(a.options()).map_err(Into::into),
        Command::Tokenize(a) => cli::tokenize::tokenize(a),
        Command::Detokenize(a) => cli::tokenize::detokenize(a),
    };
    if let Err(e) = result {
        eprintln!("kiln: {e:#}");
        std::process::exit(1);
    }
}
