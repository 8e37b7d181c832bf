//! `kiln tokenize` / `kiln detokenize`: a model's tokenizer on its own, for debugging. MODEL is an
//! artifact (or, with the compiler's `kiln`, a Hugging Face folder or a GGUF file: it passes its
//! own loader).
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use crate::tokenizer::Tokenizer;

#[derive(Args, Debug)]
pub struct TokenizeArgs {
    pub model: PathBuf,
    /// The text [default: standard input]
    pub text: Option<String>,
    /// Only the ids, space separated.
    #[arg(long)]
    pub ids: bool,
}

#[derive(Args, Debug)]
pub struct DetokenizeArgs {
    pub model: PathBuf,
    /// Token ids [default: read from standard input]
    pub ids: Vec<String>,
}

/// Finds the tokenizer of what a path names.
pub type Loader = fn(&Path) -> Result<Tokenizer>;

/// An artifact's tokenizer.
pub fn artifact_tokenizer(path: &Path) -> Result<Tokenizer> {
    if path.exists() && !crate::artifact::Artifact::is_artifact(path) {
        anyhow::bail!("{}: not a Kiln artifact (this build reads artifacts; `kiln compile` makes them)", path.display());
    }
    Ok(Tokenizer::for_artifact(&crate::artifact::Artifact::open(path, false)?.meta)?)
}

fn stdin() -> Result<String> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).context("reading standard input")?;
    Ok(s)
}

pub fn tokenize(args: TokenizeArgs, tokenizer: Loader) -> Result<()> {
    let tok = tokenizer(&args.model)?;
    let text = match args.text {
        Some(t) => t,
        None => stdin()?,
    };
    let ids = tok.encode(&text)?;
    if args.ids {
        println!("{}", ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" "));
        return Ok(());
    }
    for id in ids {
        println!("{id:>7} {:?}", tok.decode(&[id])?);
    }
    Ok(())
}

pub fn detokenize(args: DetokenizeArgs, tokenizer: Loader) -> Result<()> {
    let tok = tokenizer(&args.model)?;
    let words = if args.ids.is_empty() { stdin()?.split_whitespace().map(String::from).collect() } else { args.ids };
    let ids = words
        .iter()
        .flat_map(|w| w.split(',').map(|s| s.trim_matches(|c: char| c == '[' || c == ']' || c.is_whitespace())).filter(|s| !s.is_empty()))
        .map(|s| s.parse::<u32>().with_context(|| format!("'{s}' is not a token id")))
        .collect::<Result<Vec<u32>>>()?;
    let vocab = tok.vocab_size();
    if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
        anyhow::bail!("token id {bad} is outside the vocabulary ({vocab})");
    }
    print!("{}", tok.decode(&ids)?);
    Ok(())
}
