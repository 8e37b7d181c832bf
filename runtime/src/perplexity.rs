//! Perplexity of a text: its tokens cut into consecutive windows of `window` tokens (the rest
//! dropped), each evaluated from an empty cache, tokens scored by the log-probability the model
//! gave them — every token but a window's first (Kiln's definition), or, as llama.cpp's
//! `llama-perplexity` does, only the second half of each window, its first token replaced by BOS.
use crate::error::{Error, Result};
use crate::model::Model;

#[derive(Clone, Debug, PartialEq)]
pub struct Perplexity {
    /// exp(mean negative log-likelihood)
    pub ppl: f64,
    /// Its standard error: ppl × the standard error of the mean negative log-likelihood.
    pub error: f64,
    pub windows: usize,
    /// Tokens scored.
    pub scored: usize,
}

/// −log softmax(logits)[token], in f64.
fn nll(logits: &[f32], token: u32) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let sum: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    max + sum.ln() - logits[token as usize] as f64
}

/// Which tokens of a window count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scoring {
    /// Every token after the first.
    AllButFirst,
    /// Tokens window/2 + 1 .. (llama-perplexity), the window's first token replaced by this BOS.
    SecondHalf { bos: Option<u32> },
}

/// Scores `tokens` in windows of `window`, each run through the model `batch` tokens per pass;
/// `on_window` sees the running perplexity after each window.
pub fn perplexity(model: &mut Model, tokens: &[u32], window: usize, batch: usize, scoring: Scoring, on_window: &mut dyn FnMut(usize, f64)) -> Result<Perplexity> {
    let context = model.executor.cache.context;
    if window < 2 || window > context || batch == 0 {
        return Err(Error::Perplexity(format!("a window of {window} tokens in batches of {batch} (the window needs 2 to {context} tokens, the batch at least 1)")));
    }
    if tokens.len() < window {
        return Err(Error::Perplexity(format!("the text has {} tokens, fewer than one window of {window}", tokens.len())));
    }
    let vocab = model.vocab();
    let mut nlls: Vec<f64> = vec![];
    let (first_scored, bos) = match scoring {
        Scoring::AllButFirst => (1, None),
        Scoring::SecondHalf { bos } => (window / 2 + 1, bos),
    };
    for (w, chunk) in tokens.chunks_exact(window).enumerate() {
        let mut chunk = chunk.to_vec();
        if let Some(b) = bos {
            chunk[0] = b;
        }
        let mut logits: Vec<f32> = Vec::with_capacity(window * vocab);
        for (b, part) in chunk.chunks(batch).enumerate() {
            logits.extend(model.forward(part, b * batch, true)?);
        }
        nlls.extend((first_scored..window).map(|t| nll(&logits[(t - 1) * vocab..t * vocab], chunk[t])));
        on_window(w + 1, (nlls.iter().sum::<f64>() / nlls.len() as f64).exp());
    }
    let n = nlls.len() as f64;
    let mean = nlls.iter().sum::<f64>() / n;
    let variance = nlls.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let ppl = mean.exp();
    Ok(Perplexity { ppl, error: ppl * (variance / n).sqrt(), windows: tokens.len() / window, scored: nlls.len() })
}
