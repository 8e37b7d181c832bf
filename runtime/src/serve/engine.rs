//! One model's engine: a thread that owns its session (weights, kernels, KV cache) and answers
//! queued requests one at a time, streaming events back. The cache keeps the last request's
//! tokens, so a request that extends it (the next turn of a chat) prefills only what is new.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use tokio::sync::mpsc::UnboundedSender;

use super::metrics::Metrics;
use crate::sampler::{Sampler, SamplerConfig};
use crate::session::{Finish, Request, Session, Stats};

pub struct Job {
    pub prompt: Vec<u32>,
    pub sampling: SamplerConfig,
    pub max_tokens: usize,
    pub stop: Vec<String>,
    /// Set when the client goes away: the answer ends at the next token.
    pub cancel: Arc<AtomicBool>,
    pub events: UnboundedSender<Event>,
}

pub enum Event {
    Text(String),
    Done { finish: Finish, stats: Stats },
    Failed(String),
}

pub struct Engine {
    jobs: mpsc::Sender<Job>,
    /// Requests queued or running.
    pub pending: Arc<AtomicUsize>,
    pub metrics: Arc<Metrics>,
}

impl Engine {
    pub fn start(mut session: Session, stop_ids: Vec<u32>) -> Engine {
        let (jobs, queue) = mpsc::channel::<Job>();
        let pending = Arc::new(AtomicUsize::new(0));
        let metrics = Arc::new(Metrics::default());
        let (count, recorder) = (pending.clone(), metrics.clone());
        std::thread::spawn(move || {
            for job in queue {
                let mut sampler = Sampler::new(job.sampling.clone());
                let req = Request { prompt: &job.prompt, max_tokens: job.max_tokens, stop_ids: &stop_ids, stop_strings: &job.stop, cancel: Some(&job.cancel) };
                let events = job.events.clone();
                let result = session.generate(&mut sampler, &req, &mut |text| {
                    if !text.is_empty() && events.send(Event::Text(text.to_string())).is_err() {
                        job.cancel.store(true, Ordering::Relaxed);
                    }
                });
                let _ = job.events.send(match result {
                    Ok((_, stats, finish)) => {
                        recorder.record(&stats);
                        Event::Done { finish, stats }
                    }
                    Err(e) => Event::Failed(e.to_string()),
                });
                count.fetch_sub(1, Ordering::Relaxed);
            }
        });
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
