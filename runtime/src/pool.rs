//! The threads that run each plan step. A step's work is cut into more pieces than threads, and
//! the caller and the workers take them one at a time from a shared counter: a thread the OS has
//! descheduled holds up only the piece it is in, and the others take the rest.
//!
//! Waiting, cheapest first: an idle worker spins (a forward pass is hundreds of short steps, and
//! waking a sleeping thread costs a futex call each), then yields the CPU, then parks. When a
//! step still waits long for a piece held by a descheduled worker, the machine is busy: unless
//! the thread count was set by hand, the caller then runs steps alone for a while, twice as long
//! each time the machine is still busy when it tries all threads again.
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// An idle worker spins this long, then yields the CPU until YIELD, then parks.
const SPIN: Duration = Duration::from_micros(50);
const YIELD: Duration = Duration::from_millis(3);
/// A caller that waits longer than this (and than twice its own time per piece) for the last
/// pieces of a step is waiting for a worker the OS has descheduled.
const STALL: Duration = Duration::from_micros(250);
/// The machine is busy when such stalls add up to a tenth of a window: a lone stall (a virtual
/// CPU paused by its host, an interrupt) is not worth giving up the other threads for.
const WINDOW: Duration = Duration::from_millis(100);
const BUSY: Duration = Duration::from_millis(10);
/// How long the caller then runs steps alone: from ALONE_MIN, doubling while stalls go on.
const ALONE_MIN: Duration = Duration::from_millis(20);
const ALONE_MAX: Duration = Duration::from_secs(1);

type Job<'a> = &'a (dyn Fn(usize) + Sync);

/// The word workers take pieces from: generation (40 bits) | pieces (12 bits) | next piece (12 bits).
#[derive(Clone, Copy)]
struct State(u64);

impl State {
    const MAX_PIECES: usize = (1 << 12) - 1;
    const ONE_GENERATION: u64 = 1 << 24;
    fn new(generation: u64, pieces: usize) -> State {
        State(generation << 24 | (pieces as u64) << 12)
    }
    fn generation(self) -> u64 {
        self.0 >> 24
    }
    fn pieces(self) -> usize {
        (self.0 >> 12 & 0xfff) as usize
    }
    fn next(self) -> usize {
        (self.0 & 0xfff) as usize
    }
}

struct Shared {
    state: AtomicU64,
    /// Each generation's job, at its parity: points at the caller's `Job`, which lives until
    /// every piece of that generation is done.
    jobs: [AtomicPtr<Job<'static>>; 2],
    /// Pieces of the current generation done.
    done: AtomicUsize,
    parked: AtomicUsize,
    stop: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Shared {
    /// Takes the next piece of `generation`, if one is left.
    fn take(&self, generation: u64) -> Option<usize> {
        let mut s = State(self.state.load(Acquire));
        loop {
            if s.generation() != generation || s.next() >= s.pieces() {
                return None;
            }
            match self.state.compare_exchange_weak(s.0, s.0 + 1, AcqRel, Acquire) {
                Ok(_) => return Some(s.next()),
                Err(now) => s = State(now),
            }
        }
    }

    /// Runs `first` and then every piece of `generation` still left; returns how many it ran.
    fn work(&self, generation: u64, first: usize, job: Job) -> usize {
        let mut piece = Some(first);
        let mut ran = 0;
        while let Some(p) = piece {
            job(p);
            self.done.fetch_add(1, Release);
            ran += 1;
            piece = self.take(generation);
        }
        ran
    }
}

pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    generation: Cell<u64>,
    /// Whether to fall back to the caller alone on a busy machine (not when threads were set by hand).
    adaptive: bool,
    /// Stalls in the current window: (its start, their total).
    stalls: Cell<(Instant, Duration)>,
    /// Steps run on the caller alone until then.
    alone_until: Cell<Instant>,
    alone_for: Cell<Duration>,
}

impl Pool {
    /// KILN_THREADS threads if set (the caller counts as one), else one per CPU available, adaptive.
    pub fn new() -> Pool {
        match std::env::var("KILN_THREADS").ok().and_then(|t| t.parse().ok()).filter(|&t: &usize| t > 0) {
            Some(threads) => Pool::with_threads(threads, false),
            None => Pool::with_threads(std::thread::available_parallelism().map_or(1, |n| n.get()), true),
        }
    }

    pub fn with_threads(threads: usize, adaptive: bool) -> Pool {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(0),
            jobs: [AtomicPtr::new(std::ptr::null_mut()), AtomicPtr::new(std::ptr::null_mut())],
            done: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let workers = (1..threads)
            .map(|_| {
                let shared = shared.clone();
                std::thread::spawn(move || worker(&shared))
            })
            .collect();
        let now = Instant::now();
        Pool { shared, workers, generation: Cell::new(0), adaptive, stalls: Cell::new((now, Duration::ZERO)), alone_until: Cell::new(now), alone_for: Cell::new(ALONE_MIN) }
    }

    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// How many pieces to cut `units` of work into now, `per_thread` per thread: 1 when the
    /// caller runs alone.
    pub fn pieces(&self, units: usize, per_thread: usize) -> usize {
        if self.workers.is_empty() || (self.adaptive && Instant::now() < self.alone_until.get()) {
            return 1;
        }
        units.min(self.threads() * per_thread).clamp(1, State::MAX_PIECES)
    }

    /// Runs `job(p)` for every piece p in 0..pieces on the caller and the workers; returns when all are done.
    pub fn run(&self, pieces: usize, job: Job) {
        assert!(pieces <= State::MAX_PIECES);
        if pieces <= 1 || self.workers.is_empty() {
            (0..pieces).for_each(job);
            return;
        }
        let s = &*self.shared;
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        // SAFETY (lifetime): `job` outlives every use of this pointer: workers read it only while
        // holding an unfinished piece of this generation, and this call returns after all are done.
        let erased = &job as *const Job as *mut Job<'static>;
        s.jobs[generation as usize & 1].store(erased, Release);
        s.done.store(0, Relaxed);
        s.state.store(State::new(generation, pieces).0, SeqCst);
        if s.parked.load(SeqCst) > 0 {
            let _guard = s.lock.lock().unwrap();
            s.wake.notify_all();
        }
        let start = Instant::now();
        let ran = s.take(generation).map_or(0, |first| s.work(generation, first, job));
        let waiting = Instant::now();
        let own = waiting - start;
        let mut spins = 0u32;
        while s.done.load(Acquire) < pieces {
            spins += 1;
            if spins < 1000 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        let waited = waiting.elapsed();
        if self.adaptive && waited > STALL.max(2 * own / ran.max(1) as u32) {
            self.stalled(waited);
        }
    }

    /// A step waited this long for a descheduled worker. When such waits add up to BUSY in a
    /// WINDOW, the caller runs steps alone for a while: twice as long as last time when the last
    /// such while ended only just before.
    fn stalled(&self, waited: Duration) {
        let now = Instant::now();
        let (start, total) = self.stalls.get();
        let (start, total) = if now - start > WINDOW { (now, waited) } else { (start, total + waited) };
        self.stalls.set((start, total));
        if total < BUSY {
            return;
        }
        self.stalls.set((now, Duration::ZERO));
        let recent = now < self.alone_until.get() + self.alone_for.get();
        let alone_for = if recent { (self.alone_for.get() * 2).min(ALONE_MAX) } else { ALONE_MIN };
        self.alone_for.set(alone_for);
        self.alone_until.set(now + alone_for);
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let s = &*self.shared;
        s.stop.store(true, SeqCst);
        s.state.fetch_add(State::ONE_GENERATION, SeqCst);
        drop(s.lock.lock().unwrap());
        s.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(s: &Shared) {
    let mut seen = 0;
    while let Some(generation) = wait_for_work(s, seen) {
        seen = generation;
        if let Some(first) = s.take(generation) {
            // SAFETY: we hold an unfinished piece of `generation`, so its job is alive (see `run`),
            // and its pointer was stored before the state we took the piece from.
            let job = unsafe { *s.jobs[generation as usize & 1].load(Acquire) };
            s.work(generation, first, job);
        }
    }
}

/// Waits for a generation newer than `seen`: spinning, then yielding, then parked. None: stop.
fn wait_for_work(s: &Shared, seen: u64) -> Option<u64> {
    let mut idle_since = Instant::now();
    let mut spins = 0u32;
    loop {
        let generation = State(s.state.load(Acquire)).generation();
        if s.stop.load(Relaxed) {
            return None;
        }
        if generation != seen {
            return Some(generation);
        }
        spins = spins.wrapping_add(1);
        if !spins.is_multiple_of(64) {
            std::hint::spin_loop();
            continue;
        }
        let idle = idle_since.elapsed();
        if idle < SPIN {
            std::hint::spin_loop();
        } else if idle < YIELD {
            std::thread::yield_now();
        } else {
            // Park: announce it first, so a submitter either sees us parked or we see its generation.
            s.parked.fetch_add(1, SeqCst);
            let mut guard = s.lock.lock().unwrap();
            while State(s.state.load(SeqCst)).generation() == seen {
                guard = s.wake.wait(guard).unwrap();
            }
            drop(guard);
            s.parked.fetch_sub(1, SeqCst);
            idle_since = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pool;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// Every piece of every job runs exactly once: across parking, and with more pools than CPUs.
    #[test]
    fn every_piece_runs_once_per_job_even_after_parking() {
        let pools: Vec<Pool> = (0..3).map(|i| Pool::with_threads(2 + i, i == 0)).collect();
        std::thread::scope(|scope| {
            for pool in pools {
                scope.spawn(move || {
                    for round in 0..2000 {
                        if round % 500 == 250 {
                            std::thread::sleep(std::time::Duration::from_millis(10)); // workers park
                        }
                        let pieces = pool.pieces(1 + round % 37, 2);
                        let hits: Vec<AtomicUsize> = (0..pieces).map(|_| AtomicUsize::new(0)).collect();
                        pool.run(pieces, &|p| {
                            hits[p].fetch_add(1, Ordering::SeqCst);
                        });
                        assert!(hits.iter().all(|h| h.load(Ordering::SeqCst) == 1), "round {round}");
                    }
                });
            }
        });
    }

    /// Steps held up again and again by a slow worker (as by one the OS deschedules) make the
    /// caller run alone; all threads are tried again after a while.
    #[test]
    fn stalls_make_the_caller_run_alone_for_a_while() {
        let pool = Pool::with_threads(2, true);
        let caller = std::thread::current().id();
        let started = Instant::now();
        while pool.pieces(8, 2) > 1 {
            assert!(started.elapsed() < Duration::from_secs(10), "the pool never ran alone");
            pool.run(pool.pieces(8, 2), &|_| {
                let (pause, until) = if std::thread::current().id() == caller { (0, 50) } else { (2000, 2000) };
                std::thread::sleep(Duration::from_micros(pause));
                let start = Instant::now();
                while start.elapsed() < Duration::from_micros(until - pause) {}
            });
        }
        let alone = Instant::now();
        while pool.pieces(8, 2) == 1 {
            assert!(alone.elapsed() < Duration::from_secs(2), "the pool never tried all threads again");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
