//! A conversation with a model: the tokens whose keys and values sit in the KV cache, extended
//! request by request. A request prefills only what differs from the cache (in a chat, the new
//! turn), then decodes token by token, streaming text.
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::decoder::{Decoder, Next};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::sampler::Sampler;
use crate::tokenizer::Tokenizer;

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV entries were already cached from earlier requests.
    pub reused_tokens: usize,
    pub generated: usize,
    pub prefill_secs: f64,
    pub decode_secs: f64,
}

impl Stats {
    pub fn summary(&self) -> String {
        let prefilled = self.prompt_tokens - self.reused_tokens;
        format!(
            "prompt {} tokens ({} cached), time to first token {:.3} s, prefill {:.1} tok/s, decode {:.1} tok/s ({} tokens)",
            self.prompt_tokens,
            self.reused_tokens,
            self.prefill_secs,
            prefilled as f64 / self.prefill_secs.max(1e-9),
            self.generated.saturating_sub(1) as f64 / self.decode_secs.max(1e-9),
            self.generated
        )
    }
}

pub struct Request<'a> {
    pub prompt: &'a [u32],
    pub max_tokens: usize,
    pub stop_ids: &'a [u32],
    pub stop_strings: &'a [String],
    /// Set from elsewhere (a Ctrl-C handler) to end the answer early.
    pub cancel: Option<&'a AtomicBool>,
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    EndOfSequence,
    StopString,
    MaxTokens,
    ContextFull,
    Cancelled,
}

pub struct Session {
    pub model: Model,
    pub tokenizer: Tokenizer,
    /// cached[i] is the token whose keys and values are at position i of the KV cache.
    cached: Vec<u32>,
}

impl Session {
    pub fn new(model: Model, tokenizer: Tokenizer) -> Session {
        Session { model, tokenizer, cached: vec![] }
    }

    pub fn context(&self) -> usize {
        self.model.executor.cache.context
    }

    pub fn cached_tokens(&self) -> usize {
        self.cached.len()
    }

    pub fn reset(&mut self) {
        self.cached.clear();
    }

    /// Generates a continuation of `req.prompt`; `emit` receives text as soon as it is whole
    /// characters that cannot be the start of a stop string.
    pub fn generate(&mut self, sampler: &mut Sampler, req: &Request, emit: &mut dyn FnMut(&str)) -> Result<(Vec<u32>, Stats, Finish)> {
        let context = self.context();
        if req.prompt.is_empty() {
            return Err(Error::EmptyPrompt);
        }
        if req.prompt.len() > context {
            return Err(Error::ContextFull { tokens: req.prompt.len(), context });
        }
        // keep the longest cached prefix, but always prefill one token to get logits
        let reuse = self.cached.iter().zip(req.prompt).take_while(|(a, b)| a == b).count().min(req.prompt.len() - 1);
        self.cached.truncate(reuse);
        let mut stats = Stats { prompt_tokens: req.prompt.len(), reused_tokens: reuse, ..Default::default() };
        let start = Instant::now();
        let mut logits = self.model.forward(&req.prompt[reuse..], reuse, false)?;
        self.cached.extend_from_slice(&req.prompt[reuse..]);
        stats.prefill_secs = start.elapsed().as_secs_f64();

        let decode_start = Instant::now();
        let mut decoder = Decoder::new(req.max_tokens, req.stop_ids, req.stop_strings, None);
        let finish = loop {
            if req.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                decoder.end(Finish::Cancelled, emit);
                break Finish::Cancelled;
            }
            match decoder.next(sampler, &self.tokenizer, &logits, &self.cached, self.cached.len() < context, emit)? {
                Next::Done(finish) => break finish,
                Next::Token(next) => {
                    logits = self.model.forward(&[next], self.cached.len(), false)?;
                    self.cached.push(next);
                }
            }
        };
        let out = decoder.tokens;
        stats.generated = out.len();
        stats.decode_secs = decode_start.elapsed().as_secs_f64();
        Ok((out, stats, finish))
    }
}
