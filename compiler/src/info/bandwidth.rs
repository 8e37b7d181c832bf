//! This machine's memory read bandwidth, measured as decode uses memory: every thread of the pool
//! streams its share of a buffer far larger than the caches. Best of a few passes.
use std::time::Instant;

use rayon::prelude::*;

/// Bytes per second.
pub fn measure() -> f64 {
    const LEN: usize = 256 << 20; // 256 MiB of u64
    let buf: Vec<u64> = (0..LEN / 8).map(|i| i as u64).collect();
    let mut best = f64::MAX;
    for _ in 0..4 {
        let start = Instant::now();
        let sum: u64 = buf.par_chunks(1 << 16).map(|c| c.iter().fold(0u64, |a, &x| a.wrapping_add(x))).reduce(|| 0, u64::wrapping_add);
        std::hint::black_box(sum);
        best = best.min(start.elapsed().as_secs_f64());
    }
    LEN as f64 / best
}
