//! The commands that run artifacts, one file per command (and what commands share): used by the
//! full `kiln` (compiler crate) and by `kiln-rt`, the runtime-only build.
pub mod chat;
pub mod generate;
pub mod info;
pub mod perplexity;
pub mod run;
pub mod sampling;
pub mod template;
pub mod thinking;
pub mod tokenize;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// The commands both builds have.
#[derive(Subcommand)]
pub enum Command {
    /// Answer one prompt (argument, --file, or standard input).
    Run(run::RunArgs),
    /// Chat with a model, turn by turn.
    Chat(chat::ChatArgs),
    /// Render a chat template file for a conversation, exactly as transformers would.
    Template(template::TemplateArgs),
    /// Show the prompt a compiled model receives for a conversation.
    Prompt(template::PromptArgs),
    /// Serve compiled models over an OpenAI-compatible HTTP API.
    Serve(crate::serve::ServeArgs),
    /// Score a text file: the model's perplexity on it, window by window.
    Perplexity(perplexity::PerplexityArgs),
    /// Split text into a model's tokens.
    Tokenize(tokenize::TokenizeArgs),
    /// Turn token ids back into text.
    Detokenize(tokenize::DetokenizeArgs),
}

impl Command {
    /// Runs the command; `tokenizer` finds the tokenizer of a path (an artifact, or more).
    pub fn run(self, tokenizer: tokenize::Loader) -> Result<()> {
        match self {
            Command::Run(a) => run::run(a),
            Command::Chat(a) => chat::chat(a),
            Command::Template(a) => template::template(a),
            Command::Prompt(a) => template::prompt(a),
            Command::Serve(a) => crate::serve::serve(a.options()).map_err(Into::into),
            Command::Perplexity(a) => perplexity::perplexity(a),
            Command::Tokenize(a) => tokenize::tokenize(a, tokenizer),
            Command::Detokenize(a) => tokenize::detokenize(a, tokenizer),
        }
    }
}

/// Parses the command line as Unix tools do: `… | head` ends quietly; a usage error is one line
/// naming the problem (clap's usage block is one `--help` away), exit status 2.
pub fn parse<C: Parser>(name: &str) -> C {
    // SAFETY: restoring the default SIGPIPE action before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    C::try_parse().unwrap_or_else(|e| {
        use clap::error::ErrorKind::*;
        if matches!(e.kind(), DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand) {
            e.exit();
        }
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
        eprintln!("{name}: {first} (see {name} --help)");
        std::process::exit(2);
    })
}

/// Exits 1 with a one-line message when the command failed.
pub fn exit_on_error(name: &str, result: Result<()>) {
    if let Err(e) = result {
        eprintln!("{name}: {e:#}");
        std::process::exit(1);
    }
}
