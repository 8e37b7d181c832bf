//! `kiln perplexity`: how well a model predicts a text file.
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use crate::perplexity::Scoring;
use crate::tokenizer::Tokenizer;

#[derive(Args, Debug)]
pub struct PerplexityArgs {
    /// A compiled model (`kiln compile`).
    pub artifact: PathBuf,
    /// The text to score (tokenised as it is, no BOS added, unless --llama-cpp).
    pub file: PathBuf,
    /// Tokens per window; each window starts from an empty cache.
    #[arg(long, default_value_t = 512)]
    pub ctx: usize,
    /// Tokens per forward pass.
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Score as llama.cpp's llama-perplexity does: the text tokenised with BOS where the model
    /// adds one, each window's first token replaced by BOS, only the second half of each window scored.
    #[arg(long)]
    pub llama_cpp: bool,
}

pub fn perplexity(args: PerplexityArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("{}", args.file.display()))?;
    if args.ctx < 2 {
        anyhow::bail!("--ctx must be at least 2");
    }
    let mut model = crate::Model::open(&args.artifact, Some(args.ctx))?;
    let tokenizer = Tokenizer::for_artifact(&model.artifact.meta)?;
    let (tokens, scoring) = if args.llama_cpp {
        (tokenizer.encode(&text)?, Scoring::SecondHalf { bos: tokenizer.added_bos() })
    } else {
        (tokenizer.encode_without_bos(&text)?, Scoring::AllButFirst)
    };
    let windows = tokens.len() / args.ctx;
    if windows > 0 {
        eprintln!("{} tokens: {windows} windows of {}, {} tokens left over", tokens.len(), args.ctx, tokens.len() % args.ctx);
    }
    let p = crate::perplexity::perplexity(&mut model, &tokens, args.ctx, args.batch, scoring, &mut |w, ppl| eprintln!("[{w}/{windows}] {ppl:.4}"))?;
    println!("scored {} tokens in {} windows", p.scored, p.windows);
    println!("ppl = {:.4} ± {:.4}", p.ppl, p.error);
    Ok(())
}
