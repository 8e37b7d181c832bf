//! Generation: prefill the prompt in one batched pass, then decode token by token, streaming text.
use std::time::Instant;

use crate::error::Result;
use crate::model::Model;
use crate::sampler::Sampler;
use crate::tokenizer::{StreamDecoder, Tokenizer};

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub prompt_tokens: usize,
    pub generated: usize,
    pub prefill_secs: f64,
    pub decode_secs: f64,
}

impl Stats {
    pub fn summary(&self) -> String {
        format!(
            "prompt {} tokens, time to first token {:.3} s, prefill {:.1} tok/s, decode {:.1} tok/s ({} tokens)",
            self.prompt_tokens,
            self.prefill_secs,
            self.prompt_tokens as f64 / self.prefill_secs.max(1e-9),
            self.generated.saturating_sub(1) as f64 / self.decode_secs.max(1e-9),
            self.generated
        )
    }
}

pub struct Request<'a> {
    pub prompt: &'a [u32],
    pub max_tokens: usize,
    pub stop_ids: &'a [u32],
}

/// Generates from an empty cache; `emit` receives text pieces as soon as they are whole characters.
pub fn generate(model: &mut Model, tok: &Tokenizer, sampler: &mut Sampler, req: &Request, emit: &mut dyn FnMut(&str)) -> Result<(Vec<u32>, Stats)> {
    let mut stats = Stats { prompt_tokens: req.prompt.len(), ..Default::default() };
    let start = Instant::now();
    let mut logits = model.forward(req.prompt, 0, false)?;
    stats.prefill_secs = start.elapsed().as_secs_f64();
    let decode_start = Instant::now();
    let mut out = vec![];
    let mut stream = StreamDecoder::new();
    let mut pos = req.prompt.len();
    while out.len() < req.max_tokens {
        let next = sampler.sample(&logits);
        if req.stop_ids.contains(&next) {
            break;
        }
        out.push(next);
        emit(&stream.push(tok, next)?);
        if out.len() == req.max_tokens || pos + 1 > model.executor.cache.context {
            break;
        }
        logits = model.forward(&[next], pos, false)?;
        pos += 1;
    }
    stats.generated = out.len();
    stats.decode_secs = decode_start.elapsed().as_secs_f64();
    Ok((out, stats))
}
