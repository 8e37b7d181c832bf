//! One model's engine: a thread that owns the model and batches continuously. Each step is one
//! forward pass over the next token of every answer being decoded, then prompt tokens of
//! requests being prefilled — in chunks, so that running answers do not stall — up to
//! `step_tokens` rows. Requests join between steps and leave when done.
//!
//! The KV cache is slotted: `slots` sequences of `context` positions each, fixed at start (no
//! allocation, no fragmentation, no eviction while a request runs). A request takes the free slot
//! whose cached tokens share the longest prefix with its prompt (the same system prompt, the
//! earlier turns of a chat) and prefills only the rest. Kernels compute every row the same way
//! whatever the batch (executor.rs), so an answer does not depend on what runs beside it.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use super::metrics::Metrics;
use crate::decoder::{Decoder, Next, TokenLogprob};
use crate::executor::Row;
use crate::model::Model;
use crate::sampler::{Sampler, SamplerConfig};
use crate::session::{Finish, Stats};
use crate::tokenizer::Tokenizer;

pub struct Job {
    pub prompt: Vec<u32>,
    pub sampling: SamplerConfig,
    pub max_tokens: usize,
    pub stop: Vec<String>,
    /// Log-probabilities with this many alternatives per token; None: none.
    pub top_logprobs: Option<usize>,
    /// Set when the client goes away: the answer ends at the next step.
    pub cancel: Arc<AtomicBool>,
    pub events: UnboundedSender<Event>,
    pub arrived: Instant,
}

pub enum Event {
    /// Text safe to show, and the log-probabilities of the tokens chosen since the last event.
    Text(String, Vec<(String, TokenLogprob)>),
    Done { finish: Finish, stats: Stats },
    Failed(String),
}

/// A request in a slot: prefilling its prompt, then decoding.
struct Running {
    job: Job,
    sampler: Sampler,
    decoder: Decoder,
    /// The token to forward next step (decoding), or None while prefilling.
    next: Option<u32>,
    stats: Stats,
    logprobs_sent: usize,
    first_token: Option<Instant>,
}

struct Slot {
    /// cached[i] is the token whose keys and values are at position i of this slot.
    cached: Vec<u32>,
    /// The step it was last given a request, to reuse the least recently used first.
    used: u64,
    running: Option<Running>,
}

impl Slot {
    /// The running request's next token from its logits, streamed out; forwarded next step, or
    /// the answer ends (returned). `context`: positions the slot holds.
    fn answer(&mut self, tokenizer: &Tokenizer, context: usize, logits: &[f32]) -> Option<Finish> {
        let r = self.running.as_mut().expect("a running slot");
        let now = Instant::now();
        if r.first_token.is_none() {
            r.first_token = Some(now);
            r.stats.prefill_secs = (now - r.job.arrived).as_secs_f64();
        }
        let mut text = String::new();
        let next = r.decoder.next(&mut r.sampler, tokenizer, logits, &self.cached, self.cached.len() < context, &mut |t| text.push_str(t));
        if !text.is_empty() || r.decoder.logprobs.len() > r.logprobs_sent {
            let new = &r.decoder.logprobs[r.logprobs_sent..];
            let logprobs = new.iter().map(|l| (tokenizer.decode(&[l.token]).unwrap_or_default(), l.clone())).collect();
            r.logprobs_sent = r.decoder.logprobs.len();
            if r.job.events.send(Event::Text(text, logprobs)).is_err() {
                r.job.cancel.store(true, Ordering::Relaxed);
            }
        }
        match next {
            Ok(Next::Token(t)) => {
                r.next = Some(t);
                None
            }
            Ok(Next::Done(finish)) => Some(finish),
            Err(e) => {
                let _ = r.job.events.send(Event::Failed(e.to_string()));
                Some(Finish::Cancelled)
            }
        }
    }
}

pub struct Engine {
    jobs: mpsc::Sender<Job>,
    /// Requests queued or running.
    pub pending: Arc<AtomicUsize>,
    pub metrics: Arc<Metrics>,
}

impl Engine {
    /// Starts the engine thread; `step_tokens` caps the rows of a step while answers are decoding.
    pub fn start(model: Model, tokenizer: Tokenizer, stop_ids: Vec<u32>, step_tokens: usize) -> Engine {
        let (jobs, queue) = mpsc::channel::<Job>();
        let pending = Arc::new(AtomicUsize::new(0));
        let metrics = Arc::new(Metrics::default());
        let mut batcher = Batcher {
            slots: (0..model.executor.cache.slots).map(|_| Slot { cached: vec![], used: 0, running: None }).collect(),
            model,
            tokenizer,
            stop_ids,
            step_tokens,
            waiting: VecDeque::new(),
            step: 0,
            pending: pending.clone(),
            metrics: metrics.clone(),
        };
        std::thread::spawn(move || batcher.run(queue));
        Engine { jobs, pending, metrics }
    }

    /// Queues a job unless `limit` requests are already waiting or running.
    pub fn submit(&self, job: Job, limit: usize) -> Result<(), Job> {
        if self.pending.fetch_add(1, Ordering::Relaxed) >= limit {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(job);
        }
        self.jobs.send(job).map_err(|e| {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            e.0
        })
    }
}

struct Batcher {
    model: Model,
    tokenizer: Tokenizer,
    stop_ids: Vec<u32>,
    step_tokens: usize,
    slots: Vec<Slot>,
    waiting: VecDeque<Job>,
    step: u64,
    pending: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

impl Job {
    fn abandoned(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.events.is_closed()
    }
}

impl Batcher {
    fn run(&mut self, queue: mpsc::Receiver<Job>) {
        loop {
            let idle = self.waiting.is_empty() && self.slots.iter().all(|s| s.running.is_none());
            if idle {
                match queue.recv() {
                    Ok(job) => self.waiting.push_back(job),
                    Err(_) => return, // the server is gone
                }
            }
            self.waiting.extend(queue.try_iter());
            self.drop_abandoned();
            self.admit();
            self.step();
        }
    }

    fn drop_abandoned(&mut self) {
        let before = self.waiting.len();
        self.waiting.retain(|j| !j.abandoned());
        self.pending.fetch_sub(before - self.waiting.len(), Ordering::Relaxed);
        for i in 0..self.slots.len() {
            if self.slots[i].running.as_ref().is_some_and(|r| r.job.abandoned()) {
                self.finish(i, Finish::Cancelled);
            }
        }
    }

    /// Gives waiting requests free slots, in arrival order: each the slot sharing the longest
    /// prefix with its prompt, else the least recently used.
    fn admit(&mut self) {
        while let Some(free) = self.slots.iter().position(|s| s.running.is_none()) {
            let Some(job) = self.waiting.pop_front() else { return };
            let shared = |s: &Slot| s.cached.iter().zip(&job.prompt).take_while(|(a, b)| a == b).count();
            let best = (free..self.slots.len()).filter(|&i| self.slots[i].running.is_none()).max_by_key(|&i| (shared(&self.slots[i]), u64::MAX - self.slots[i].used)).unwrap_or(free);
            // keep the longest cached prefix, but always prefill one token to get logits
            let reuse = shared(&self.slots[best]).min(job.prompt.len() - 1);
            self.step += 1;
            let slot = &mut self.slots[best];
            slot.cached.truncate(reuse);
            slot.used = self.step;
            let stats = Stats { prompt_tokens: job.prompt.len(), reused_tokens: reuse, ..Default::default() };
            let decoder = Decoder::new(job.max_tokens, &self.stop_ids, &job.stop, job.top_logprobs);
            slot.running = Some(Running { sampler: Sampler::new(job.sampling.clone()), decoder, next: None, stats, logprobs_sent: 0, first_token: None, job });
        }
    }

    /// One forward pass: a row per decoding answer, then prompt chunks while rows remain.
    fn step(&mut self) {
        let mut rows: Vec<(usize, Row)> = vec![]; // (slot, row)
        let mut logit_rows: Vec<usize> = vec![];
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(token) = s.running.as_ref().and_then(|r| r.next) {
                logit_rows.push(rows.len());
                rows.push((i, Row { token, slot: i, pos: s.cached.len() }));
            }
        }
        let decoding = rows.len();
        let budget = if decoding > 0 { self.step_tokens.max(decoding) } else { usize::MAX }.min(self.model.executor.max_rows);
        for (i, s) in self.slots.iter().enumerate() {
            let Some(r) = s.running.as_ref().filter(|r| r.next.is_none()) else { continue };
            let (from, to) = (s.cached.len(), r.job.prompt.len().min(s.cached.len() + budget.saturating_sub(rows.len())));
            rows.extend((from..to).map(|p| (i, Row { token: r.job.prompt[p], slot: i, pos: p })));
            if to == r.job.prompt.len() && to > from {
                logit_rows.push(rows.len() - 1);
            }
        }
        if rows.is_empty() {
            return;
        }
        self.metrics.observe_batch(decoding);
        let (vocab, context) = (self.model.vocab(), self.model.executor.cache.context);
        let logits = match self.model.executor.forward_rows(rows.len(), |i| rows[i].1, &logit_rows) {
            Ok(l) => l,
            Err(e) => {
                for slot in &mut self.slots {
                    if let Some(r) = slot.running.take() {
                        let _ = r.job.events.send(Event::Failed(e.to_string()));
                        self.pending.fetch_sub(1, Ordering::Relaxed);
                    }
                    slot.cached.clear();
                }
                return;
            }
        };
        for &(slot, row) in &rows {
            self.slots[slot].cached.push(row.token);
        }
        let mut ended = vec![];
        for (k, &r) in logit_rows.iter().enumerate() {
            let slot = rows[r].0;
            if let Some(finish) = self.slots[slot].answer(&self.tokenizer, context, &logits[k * vocab..(k + 1) * vocab]) {
                ended.push((slot, finish));
            }
        }
        for (slot, finish) in ended {
            self.finish(slot, finish);
        }
    }

    /// Ends the slot's request; its tokens stay cached for a later prompt that shares them.
    fn finish(&mut self, i: usize, finish: Finish) {
        let Some(mut r) = self.slots[i].running.take() else { return };
        if finish == Finish::Cancelled {
            r.decoder.end(finish, &mut |_| {});
        }
        r.stats.generated = r.decoder.tokens.len();
        r.stats.decode_secs = r.first_token.map_or(0.0, |t| t.elapsed().as_secs_f64());
        self.metrics.record(&r.stats);
        let _ = r.job.events.send(Event::Done { finish, stats: r.stats });
        self.pending.fetch_sub(1, Ordering::Relaxed);
    }
}
