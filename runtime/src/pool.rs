//! The threads that run each plan step's work range. A forward pass is hundreds of short steps,
//! so workers spin between them instead of sleeping (waking a sleeping thread costs a futex call
//! per step, which measured at a third of decode time with rayon's pool); after a few
//! milliseconds without work they park until the next step.
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// Spins (each a `pause`) before a worker parks: a few milliseconds.
const SPINS_BEFORE_PARKING: u32 = 50_000;

type Job = *const (dyn Fn(usize) + Sync);

struct Shared {
    /// Bumped once per job; workers run each new generation's job once.
    generation: AtomicUsize,
    job: UnsafeCell<Job>,
    /// Workers still running the current job.
    remaining: AtomicUsize,
    parked: AtomicUsize,
    stop: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written only by the submitting thread while no worker reads it (between a
// job's completion and the next generation bump), and read by workers only after the bump.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// A pool of `threads` (the caller counts as one), from KILN_THREADS or the CPUs available.
    pub fn new() -> Pool {
        let threads = std::env::var("KILN_THREADS").ok().and_then(|t| t.parse().ok()).filter(|&t: &usize| t > 0);
        let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let noop: &(dyn Fn(usize) + Sync) = &|_| {};
        let shared = Arc::new(Shared {
            generation: AtomicUsize::new(0),
            job: UnsafeCell::new(noop as Job),
            remaining: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let workers = (1..threads)
            .map(|index| {
                let shared = shared.clone();
                std::thread::spawn(move || worker(&shared, index))
            })
            .collect();
        Pool { shared, workers }
    }

    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `job(i)` for every i in 0..threads, the caller taking i = 0; returns when all are done.
    pub fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        let s = &*self.shared;
        if !self.workers.is_empty() {
            // SAFETY: no worker reads `job` now (the previous job is complete), and this call
            // outlives the job: it returns only after every worker has finished it.
            unsafe { *s.job.get() = std::mem::transmute::<&(dyn Fn(usize) + Sync), Job>(job) };
            s.remaining.store(self.workers.len(), SeqCst);
            s.generation.fetch_add(1, SeqCst);
            if s.parked.load(SeqCst) > 0 {
                let _guard = s.lock.lock().unwrap();
                s.wake.notify_all();
            }
        }
        job(0);
        while s.remaining.load(SeqCst) > 0 {
            std::hint::spin_loop();
        }
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        self.shared.generation.fetch_add(1, SeqCst);
        let _guard = self.shared.lock.lock().unwrap();
        self.shared.wake.notify_all();
        drop(_guard);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(s: &Shared, index: usize) {
    let mut seen = 0;
    loop {
        let mut spins = 0;
        while s.generation.load(SeqCst) == seen {
            spins += 1;
            if spins < SPINS_BEFORE_PARKING {
                std::hint::spin_loop();
                continue;
            }
            // Park: announce it first, so a submitter either sees us parked or we see its bump.
            s.parked.fetch_add(1, SeqCst);
            let mut guard = s.lock.lock().unwrap();
            while s.generation.load(SeqCst) == seen {
                guard = s.wake.wait(guard).unwrap();
            }
            drop(guard);
            s.parked.fetch_sub(1, SeqCst);
            spins = 0;
        }
        if s.stop.load(SeqCst) {
            return;
        }
        seen = s.generation.load(SeqCst);
        // SAFETY: set before the generation bump we just saw; valid until `remaining` hits 0.
        let job = unsafe { &**s.job.get() };
        job(index);
        s.remaining.fetch_sub(1, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::Pool;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_part_runs_once_per_job_even_after_parking() {
        let pool = Pool::new();
        let hits: Vec<AtomicUsize> = (0..pool.threads()).map(|_| AtomicUsize::new(0)).collect();
        for round in 0..1000 {
            if round == 500 {
                std::thread::sleep(std::time::Duration::from_millis(50)); // workers park
            }
            pool.run(&|i| {
                hits[i].fetch_add(1, Ordering::SeqCst);
            });
        }
        assert!(hits.iter().all(|h| h.load(Ordering::SeqCst) == 1000));
    }
}
