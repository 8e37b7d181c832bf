//! This machine's memory read bandwidth, measured as decode uses memory: every thread streams its
//! share of a 1 GiB buffer (far past any cache) with the widest loads the CPU has (AVX-512, else
//! AVX2, else SSE2). Best of a few passes.
use std::time::Instant;

use rayon::prelude::*;

const LEN: usize = 1 << 30;

/// Bytes per second.
pub fn measure() -> f64 {
    let buf: Vec<u64> = vec![1; LEN / 8];
    let sum: fn(&[u64]) -> u64 = if std::arch::is_x86_feature_detected!("avx512f") {
        |c| unsafe { sum_avx512(c) }
    } else if std::arch::is_x86_feature_detected!("avx2") {
        |c| unsafe { sum_avx2(c) }
    } else {
        |c| c.iter().fold(0u64, |a, &x| a.wrapping_add(x))
    };
    let mut best = f64::MAX;
    for _ in 0..4 {
        let start = Instant::now();
        let total: u64 = buf.par_chunks(1 << 20).map(sum).reduce(|| 0, u64::wrapping_add);
        assert_eq!(std::hint::black_box(total), (LEN / 8) as u64, "every word read once");
        best = best.min(start.elapsed().as_secs_f64());
    }
    LEN as f64 / best
}

// One function per ISA with its intrinsics: the same loop left to the compiler under
// #[target_feature] streamed 25% slower (16.5 vs 23 GB/s on a 2-core Sapphire Rapids).

/// The wrapping sum of a chunk whose length is a multiple of 32 words, 512-bit loads.
#[target_feature(enable = "avx512f")]
unsafe fn sum_avx512(c: &[u64]) -> u64 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_setzero_si512(); 4];
    for block in c.chunks_exact(32) {
        for (i, a) in acc.iter_mut().enumerate() {
            // SAFETY: block holds 32 words, so words 8i..8i+8 are in bounds.
            *a = _mm512_add_epi64(*a, unsafe { _mm512_loadu_si512(block.as_ptr().add(8 * i) as *const _) });
        }
    }
    let lanes: [u64; 8] = std::mem::transmute(_mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3])));
    lanes.iter().fold(0, |a, &x| a.wrapping_add(x))
}

/// The same with 256-bit loads.
#[target_feature(enable = "avx2")]
unsafe fn sum_avx2(c: &[u64]) -> u64 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_si256(); 4];
    for block in c.chunks_exact(16) {
        for (i, a) in acc.iter_mut().enumerate() {
            // SAFETY: block holds 16 words, so words 4i..4i+4 are in bounds.
            *a = _mm256_add_epi64(*a, unsafe { _mm256_loadu_si256(block.as_ptr().add(4 * i) as *const _) });
        }
    }
    let lanes: [u64; 4] = std::mem::transmute(_mm256_add_epi64(_mm256_add_epi64(acc[0], acc[1]), _mm256_add_epi64(acc[2], acc[3])));
    lanes.iter().fold(0, |a, &x| a.wrapping_add(x))
}
