//! One answer being generated: from each step's logits it samples the next token, turns tokens
//! into text (whole characters, held back while they may begin a stop string), keeps the
//! log-probabilities asked for, and decides when the answer ends. Used alike by a Session (one
//! sequence) and the server's batching engine (many).
use crate::error::Result;
use crate::sampler::Sampler;
use crate::session::Finish;
use crate::stop::StopMatcher;
use crate::tokenizer::{StreamDecoder, Tokenizer};

/// A chosen token's log-probability under the model (log-softmax of its logits, before
/// penalties and temperature), and the `top` most likely tokens with theirs.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprob {
    pub token: u32,
    pub logprob: f32,
    pub top: Vec<(u32, f32)>,
}

/// What the next step needs.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Forward this token and call `next` again with its logits.
    Token(u32),
    Done(Finish),
}

pub struct Decoder {
    max_tokens: usize,
    stop_ids: Vec<u32>,
    stream: StreamDecoder,
    stops: StopMatcher,
    /// How many top alternatives to record per token; None: no log-probabilities.
    top_logprobs: Option<usize>,
    pub tokens: Vec<u32>,
    /// One per token in `tokens` when log-probabilities are asked for.
    pub logprobs: Vec<TokenLogprob>,
}

impl Decoder {
    pub fn new(max_tokens: usize, stop_ids: &[u32], stop_strings: &[String], top_logprobs: Option<usize>) -> Decoder {
        Decoder {
            max_tokens,
            stop_ids: stop_ids.to_vec(),
            stream: StreamDecoder::new(),
            stops: StopMatcher::new(stop_strings),
            top_logprobs,
            tokens: vec![],
            logprobs: vec![],
        }
    }

    /// Takes the logits after `history` (the sequence so far) and chooses with `sampler`; `room`:
    /// whether the cache can hold one more token. `emit` receives the text that became safe to show.
    pub fn next(&mut self, sampler: &mut Sampler, tok: &Tokenizer, logits: &[f32], history: &[u32], room: bool, emit: &mut dyn FnMut(&str)) -> Result<Next> {
        if self.tokens.len() == self.max_tokens {
            return Ok(self.end(Finish::MaxTokens, emit));
        }
        let next = sampler.sample(logits, history);
        if self.stop_ids.contains(&next) {
            return Ok(self.end(Finish::EndOfSequence, emit));
        }
        if let Some(top) = self.top_logprobs {
            self.logprobs.push(logprob(logits, next, top));
        }
        self.tokens.push(next);
        let (text, stopped) = self.stops.push(&self.stream.push(tok, next)?);
        emit(&text);
        if stopped {
            return Ok(Next::Done(Finish::StopString));
        }
        if !room {
            return Ok(self.end(Finish::ContextFull, emit));
        }
        if self.tokens.len() == self.max_tokens {
            return Ok(self.end(Finish::MaxTokens, emit)); // the last token needs no forward pass
        }
        Ok(Next::Token(next))
    }

    /// Ends the answer (also from outside: a cancelled request), emitting held-back text.
    pub fn end(&mut self, finish: Finish, emit: &mut dyn FnMut(&str)) -> Next {
        emit(&self.stops.flush());
        Next::Done(finish)
    }
}

/// log softmax(logits)[token] and the `top` largest, computed in f64.
pub fn logprob(logits: &[f32], token: u32, top: usize) -> TokenLogprob {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let log_sum = max + logits.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
    let lp = |x: f32| (x as f64 - log_sum) as f32;
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(top + 1);
    for (i, &x) in logits.iter().enumerate() {
        if best.len() < top || best.last().is_some_and(|b| x > b.1) {
            let at = best.partition_point(|b| b.1 >= x);
            best.insert(at, (i as u32, x));
            best.truncate(top);
        }
    }
    TokenLogprob { token, logprob: lp(logits[token as usize]), top: best.into_iter().map(|(t, x)| (t, lp(x))).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprobs_are_a_log_softmax_with_the_best_first() {
        let l = logprob(&[1.0, 3.0, 2.0, 3.0], 2, 2);
        let z: f64 = [1.0f64, 3.0, 2.0, 3.0].iter().map(|x| x.exp()).sum();
        assert!((l.logprob as f64 - (2.0 - z.ln())).abs() < 1e-6);
        assert_eq!(l.top.iter().map(|t| t.0).collect::<Vec<_>>(), [1, 3], "ties keep the lower id first");
        assert!((l.top[0].1 as f64 - (3.0 - z.ln())).abs() < 1e-6);
        assert!(logprob(&[0.0; 5], 0, 0).top.is_empty());
    }
}
