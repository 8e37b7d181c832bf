//! Replays the plan: one forward pass = every step's kernel, its work range cut into pieces for the pool.rs threads.

use crate::artifact::Artifact;
use crate::buffer::AlignedBuf;
use crate::error::{Error, Result};
use crate::kernels::{KernelFn, Kernels};
use crate::kv_cache::KvCache;
use crate::plan::{Buf, Input, Rows, Work};
use crate::pool::Pool;

struct Resolved {
    f: KernelFn,
    args: Vec<*mut u8>,
    rows: Rows,
    work: Work,
}

pub struct Executor {
    steps: Vec<Resolved>,
    arena: AlignedBuf,
    inputs: [AlignedBuf; 4], // tokens, positions, logit rows, cache bases: [max_rows] i32 each
    pub cache: KvCache,
    logits_offset: usize,
    pub max_rows: usize,
    pub vocab: usize,
    /// Per-thread kernel scratch (0: the kernels' row-by-row paths only, as where AMX is built
    /// for but not granted).
    scratch_bytes: usize,
    pool: Pool,
    /// When set, the time spent in each step (seconds, summed over passes).
    pub profile: Option<Vec<f64>>,
}

// SAFETY: the raw pointers point into buffers this value owns or into the artifact's read-only map,
// which the owning Model keeps alive; kernels write only to disjoint work ranges.
unsafe impl Send for Executor {}

// SAFETY: as above; a step is only read while it runs.
unsafe impl Sync for Resolved {}

impl Executor {
    /// `slots` sequences of up to `context` positions each share the KV cache.
    pub fn new(artifact: &Artifact, kernels: &Kernels, context: usize, slots: usize) -> Executor {
        let plan = &artifact.meta.plan;
        let arena = AlignedBuf::zeroed(plan.arena_bytes as usize);
        let inputs = [0, 1, 2, 3].map(|_| AlignedBuf::zeroed(plan.max_rows * 4));
        let cache = KvCache::new(&plan.caches, context.min(plan.context), slots.max(1));
        let weights = artifact.weights().as_ptr() as *mut u8;
        let pointer = |buf: &Buf| -> *mut u8 {
            match *buf {
                // SAFETY (all arms): offsets were laid out by the compiler within each buffer.
                Buf::Weight { offset } => unsafe { weights.add(offset as usize) },
                Buf::Arena { offset } => unsafe { arena.ptr().add(offset as usize) },
                Buf::Input(which) => inputs[which as usize].ptr(),
                Buf::Cache(i) => cache.ptr(i),
            }
        };
        let steps = plan
            .steps
            .iter()
            .map(|s| Resolved { f: kernels.get(&s.kernel), args: s.args.iter().map(pointer).collect(), rows: s.rows, work: s.work })
            .collect();
        // kernels built for AMX take the scratch as the sign that AMX is granted; others take
        // their tile paths with it on any CPU
        let amx_built = artifact.meta.cpu_features.iter().any(|f| crate::cpu::OPTIONAL.contains(&f.as_str()));
        let scratch_bytes = if !amx_built || crate::cpu::amx_granted() { plan.scratch_bytes as usize } else { 0 };
        let Buf::Arena { offset } = plan.logits else { panic!("logits must live in the arena") };
        Executor { steps, arena, inputs, cache, logits_offset: offset as usize, max_rows: plan.max_rows, vocab: plan.vocab, scratch_bytes, pool: Pool::new(), profile: None }
    }

    /// Keeps every row on the same kernels whatever pass it is in, so that no row's result
    /// depends on the rows beside it (the server's promise): without the paths that take only
    /// some passes — AMX matmuls (passes of 64 rows and more) and attention's tiles (16 rows of
    /// one sequence, on AMX or vector registers).
    pub fn batch_invariant(&mut self) {
        self.scratch_bytes = 0;
    }

    /// Runs `tokens` of the sequence in slot 0 at positions `start..`, writing their K/V into the
    /// cache, and returns the logits of the rows `logit_rows` (indices into `tokens`): [logit_rows.len(), vocab].
    pub fn forward(&mut self, tokens: &[u32], start: usize, logit_rows: &[usize]) -> Result<&[f32]> {
        self.forward_rows(tokens.len(), |i| Row { token: tokens[i], slot: 0, pos: start + i }, logit_rows)
    }

    /// Runs `n` rows, each a token of the sequence in its slot at its position (rows of several
    /// sequences in one pass: every weight is read once for all of them). A row's result does not
    /// depend on the others: each kernel computes a row by the same operations in the same order
    /// whatever the batch.
    pub fn forward_rows(&mut self, n: usize, row: impl Fn(usize) -> Row, logit_rows: &[usize]) -> Result<&[f32]> {
        assert!(n > 0 && n <= self.max_rows && logit_rows.len() <= n && logit_rows.iter().all(|&r| r < n));
        let context = self.cache.context;
        for i in 0..n {
            let Row { token, slot, pos } = row(i);
            if pos >= context {
                return Err(Error::ContextFull { tokens: pos + 1, context });
            }
            if token as usize >= self.vocab {
                return Err(Error::TokenId { id: token, vocab: self.vocab });
            }
            assert!(slot < self.cache.slots, "slot {slot} of {}", self.cache.slots);
            self.inputs[Input::Tokens as usize].as_i32_mut(n)[i] = token as i32;
            self.inputs[Input::Positions as usize].as_i32_mut(n)[i] = pos as i32;
            self.inputs[Input::CacheBase as usize].as_i32_mut(n)[i] = (slot * context) as i32;
        }
        for (dst, src) in self.inputs[Input::LogitRows as usize].as_i32_mut(logit_rows.len()).iter_mut().zip(logit_rows) {
            *dst = *src as i32;
        }
        let r = logit_rows.len();
        for (i, step) in self.steps.iter().enumerate() {
            let rows = match step.rows {
                Rows::Tokens => n,
                Rows::Logits => r,
            };
            if rows == 0 {
                continue;
            }
            let start = self.profile.is_some().then(std::time::Instant::now);
            run(&self.pool, step, rows, self.scratch_bytes);
            if let (Some(p), Some(s)) = (&mut self.profile, start) {
                p[i] += s.elapsed().as_secs_f64();
            }
        }
        Ok(self.arena.as_f32(self.logits_offset, r * self.vocab))
    }
}

/// One row of a pass: `token` at position `pos` of the sequence in cache slot `slot`.
#[derive(Clone, Copy, Debug)]
pub struct Row {
    pub token: u32,
    pub slot: usize,
    pub pos: usize,
}

/// Cuts the step's work range into pieces (whole multiples of `grain`) that the pool's threads take.
fn run(pool: &Pool, step: &Resolved, rows: usize, scratch_bytes: usize) {
    let (total, grain) = step.work.range(rows, scratch_bytes > 0);
    let units = total.div_ceil(grain);
    let pieces = pool.pieces(units, step.work.pieces_per_thread(rows));
    pool.run(pieces, &|p| {
        let begin = units * p / pieces * grain;
        let end = (units * (p + 1) / pieces * grain).min(total);
        // SAFETY: the kernel reads/writes only its arguments within [begin, end) of the work range.
        unsafe { (step.f)(step.args.as_ptr(), rows as i64, begin as i64, end as i64, scratch(scratch_bytes)) }
    });
}

thread_local! {
    /// This thread's kernel scratch: allocated on its first pass, grown for a larger plan, kept.
    static SCRATCH: std::cell::RefCell<Option<AlignedBuf>> = const { std::cell::RefCell::new(None) };
}

/// At least `bytes` of this thread's scratch, or null for none.
fn scratch(bytes: usize) -> *mut u8 {
    if bytes == 0 {
        return std::ptr::null_mut();
    }
    SCRATCH.with_borrow_mut(|s| {
        if s.as_ref().is_none_or(|b| b.bytes() < bytes) {
            *s = Some(AlignedBuf::zeroed(bytes));
        }
        s.as_ref().unwrap().ptr()
    })
}
