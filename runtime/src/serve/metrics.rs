//! Prometheus metrics of one model (`GET /metrics`): requests, tokens, queue depth, and histograms
//! of time to first token, time per output token and batch size.
use std::fmt::Write;
use std::sync::Mutex;

use crate::session::Stats;

const TTFT_BUCKETS: [f64; 9] = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
const TPOT_BUCKETS: [f64; 9] = [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28];
const BATCH_BUCKETS: [f64; 9] = [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; 10], // one per bucket, then +Inf
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, buckets: &[f64; 9], x: f64) {
        self.counts[buckets.iter().position(|&b| x <= b).unwrap_or(9)] += 1;
        self.sum += x;
    }

    fn write(&self, out: &mut String, name: &str, model: &str, buckets: &[f64; 9]) {
        let mut total = 0;
        for (i, le) in buckets.iter().map(|b| b.to_string()).chain(["+Inf".to_string()]).enumerate() {
            total += self.counts[i];
            let _ = writeln!(out, "{name}_bucket{{model=\"{model}\",le=\"{le}\"}} {total}");
        }
        let _ = writeln!(out, "{name}_sum{{model=\"{model}\"}} {}\n{name}_count{{model=\"{model}\"}} {total}", self.sum);
    }
}

#[derive(Default)]
struct Counts {
    requests: u64,
    prompt_tokens: u64,
    cached_tokens: u64,
    generated_tokens: u64,
    ttft: Histogram,
    tpot: Histogram,
    batch: Histogram,
}

#[derive(Default)]
pub struct Metrics(Mutex<Counts>);

impl Metrics {
    /// A finished request (time to first token: from its arrival, queueing included).
    pub fn record(&self, stats: &Stats) {
        let mut c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        c.requests += 1;
        c.prompt_tokens += stats.prompt_tokens as u64;
        c.cached_tokens += stats.reused_tokens as u64;
        c.generated_tokens += stats.generated as u64;
        c.ttft.observe(&TTFT_BUCKETS, stats.prefill_secs);
        if stats.generated > 1 {
            c.tpot.observe(&TPOT_BUCKETS, stats.decode_secs / (stats.generated - 1) as f64);
        }
    }

    /// A forward pass decoding `answers` answers at once (0: prefill only).
    pub fn observe_batch(&self, answers: usize) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).batch.observe(&BATCH_BUCKETS, answers as f64);
    }

    /// The model's lines of the exposition (HELP/TYPE lines are written once, by `header`).
    pub fn write(&self, out: &mut String, model: &str, queued: usize) {
        let c = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for (name, v) in [("requests_total", c.requests), ("prompt_tokens_total", c.prompt_tokens), ("cached_prompt_tokens_total", c.cached_tokens), ("generated_tokens_total", c.generated_tokens), ("queue_depth", queued as u64)] {
            let _ = writeln!(out, "kiln_{name}{{model=\"{model}\"}} {v}");
        }
        c.ttft.write(out, "kiln_time_to_first_token_seconds", model, &TTFT_BUCKETS);
        c.tpot.write(out, "kiln_time_per_output_token_seconds", model, &TPOT_BUCKETS);
        c.batch.write(out, "kiln_batch_size", model, &BATCH_BUCKETS);
    }

    pub fn header() -> String {
        [
            ("requests_total", "counter", "Requests answered."),
            ("prompt_tokens_total", "counter", "Prompt tokens of answered requests."),
            ("cached_prompt_tokens_total", "counter", "Prompt tokens reused from the KV cache."),
            ("generated_tokens_total", "counter", "Tokens generated."),
            ("queue_depth", "gauge", "Requests running or waiting."),
            ("time_to_first_token_seconds", "histogram", "Time from a request's arrival to its first token."),
            ("time_per_output_token_seconds", "histogram", "Mean time per generated token after the first, per request."),
            ("batch_size", "histogram", "Answers decoded together, per forward pass."),
        ]
        .iter()
        .map(|(name, kind, help)| format!("# HELP kiln_{name} {help}\n# TYPE kiln_{name} {kind}\n"))
        .collect()
    }
}
