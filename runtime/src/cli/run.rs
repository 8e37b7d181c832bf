//! `kiln run`: one prompt in, one answer out.
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::generate::ModelArgs;

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt [default: --file, else standard input]
    pub prompt: Option<String>,
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Send the prompt as it is, without the chat template.
    #[arg(long)]
    pub no_chat: bool,
    #[arg(short, long)]
    pub system: Option<String>,
}

pub fn run(args: RunArgs) -> Result<()> {
    let prompt = match (&args.prompt, &args.file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f).with_context(|| format!("{}", f.display()))?,
        (None, None) => {
            if std::io::stdin().is_terminal() {
                eprintln!("kiln: reading the prompt from standard input; end it with Ctrl-D");
            }
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("reading the prompt from standard input")?;
            s
        }
    };
    let m = &args.model;
    let mut session = m.open()?;
    let mut sampler = m.sampler(&session)?;
    let text = if args.no_chat {
        prompt
    } else {
        let mut messages = vec![];
        if let Some(s) = &args.system {
            messages.push(json!({"role": "system", "content": s}));
        }
        messages.push(json!({"role": "user", "content": prompt}));
        crate::prompt::render(&session.model.artifact.meta, &messages, &m.prompt_options()?)?
    };
    let ids = session.tokenizer.encode(&text)?;
    m.answer(&mut session, &mut sampler, &ids, &text, None)?;
    m.print_profile(&session);
    // The process ends here: freeing the tokenizer's tables (150k-entry maps for Qwen2.5) would
    // cost up to 70 ms for nothing.
    std::mem::forget(session);
    Ok(())
}
