//! `kiln tokenize` / `kiln detokenize`: a model's tokenizer on its own, for debugging. MODEL is an
//! artifact, a Hugging Face folder or a GGUF file.
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use runtime::tokenizer::Tokenizer;

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

fn tokenizer(path: &Path) -> Result<Tokenizer> {
    if runtime::artifact::Artifact::is_artifact(path) {
        let a = runtime::artifact::Artifact::open(path, false)?;
        return Ok(Tokenizer::for_artifact(&a.meta)?);
    }
    let s = compiler::load_model(path)?;
    Ok(Tokenizer::new(&s.tokenizer_json, s.special_tokens.get("bos_token").map(String::as_str), s.add_bos)?)
}

fn stdin() -> Result<String> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).context("reading standard input")?;
    Ok(s)
}

pub fn tokenize(args: TokenizeArgs) -> Result<()> {
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

pub fn detokenize(args: DetokenizeArgs) -> Result<()> {
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
