//! Helper threads for splitting one matrix multiply across cores: one per core beyond the
//! first, started on first use and kept for the life of the process.
//!
//! A caller that splits a product hands one part to an idle helper, computes its own part, and
//! waits for the helper (spinning: the parts take about as long). After finishing a part a
//! helper spins for up to [`SPIN`] waiting for the next one before it sleeps, because a kernel
//! calls the matrix multiply several times in a row with short gaps between, and waking a
//! sleeping thread costs tens of microseconds (far more on a virtual machine whose idle CPU
//! the host has descheduled); thread pools for numerical code (OpenMP runtimes, Eigen's)
//! spin-then-sleep for the same reason. If no helper is idle (other callers hold them all),
//! the caller computes the part itself: no waiting on other callers, no oversubscription.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle helper spins before it sleeps.
pub const SPIN: Duration = Duration::from_millis(2);

const IDLE: u8 = 0;
const POSTED: u8 = 1;
const RUNNING: u8 = 2;
const DONE: u8 = 3;

type Job = Box<dyn FnOnce() + Send>;

struct Helper {
    /// Claimed by a caller (from posting a job until collecting its completion).
    busy: AtomicBool,
    /// `IDLE` → `POSTED` (by the caller) → `RUNNING` → `DONE` (by the helper) → `IDLE` (by
    /// the caller); or `POSTED` → `IDLE` when the caller takes a job back that the helper has
    /// not started.
    state: AtomicU8,
    job: Mutex<Option<Job>>,
    /// The helper is asleep on `wake` (or about to be).
    parked: AtomicBool,
    sleep: Mutex<()>,
    wake: Condvar,
}

fn helpers() -> &'static [Helper] {
    static POOL: OnceLock<Vec<Helper>> = OnceLock::new();
    static STARTED: OnceLock<()> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1);
        (0..n)
            .map(|_| Helper {
                busy: AtomicBool::new(false),
                state: AtomicU8::new(IDLE),
                job: Mutex::new(None),
                parked: AtomicBool::new(false),
                sleep: Mutex::new(()),
                wake: Condvar::new(),
            })
            .collect()
    });
    STARTED.get_or_init(|| {
        for (i, h) in pool.iter().enumerate() {
            let spawned =
                std::thread::Builder::new().name(format!("jjt-gemm-{i}")).spawn(move || serve(h));
            if spawned.is_err() {
                // Without this helper, it stays claimed so that no caller waits for it.
                h.busy.store(true, Ordering::SeqCst);
            }
        }
    });
    pool
}

/// A helper's loop: wait for a job (spinning, then sleeping), run it, report it done.
fn serve(h: &'static Helper) {
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        while h.state.load(Ordering::SeqCst) != POSTED {
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(256) || start.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            let mut guard = h.sleep.lock().unwrap_or_else(|e| e.into_inner());
            h.parked.store(true, Ordering::SeqCst);
            while h.state.load(Ordering::SeqCst) != POSTED {
                guard = h.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
            h.parked.store(false, Ordering::SeqCst);
        }
        if h.state.compare_exchange(POSTED, RUNNING, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            continue; // The caller took the job back.
        }
        let job = h.job.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(job) = job {
            // A panicking part must not leave its caller waiting forever; the product's
            // routines do not panic, so this only guards against the unexpected.
            let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
        }
        h.state.store(DONE, Ordering::SeqCst);
    }
}

/// Run `first` on this thread and `second` on an idle helper if there is one (else, or if the
/// helper has not started it by the time `first` is done, on this thread after `first`);
/// returns when both have finished.
pub(crate) fn join(first: impl FnOnce(), second: impl FnOnce() + Send + 'static) {
    let claimed = helpers()
        .iter()
        .find(|h| h.busy.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_ok());
    let Some(h) = claimed else {
        first();
        second();
        return;
    };
    *h.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(second));
    h.state.store(POSTED, Ordering::SeqCst);
    if h.parked.load(Ordering::SeqCst) {
        let _guard = h.sleep.lock().unwrap_or_else(|e| e.into_inner());
        h.wake.notify_one();
    }
    first();
    // A helper that has not started yet (the host may not have scheduled it) loses its job to
    // the caller, who is free now; one that has started is waited for.
    if h.state.compare_exchange(POSTED, IDLE, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
        let job = h.job.lock().unwrap_or_else(|e| e.into_inner()).take();
        h.busy.store(false, Ordering::SeqCst);
        if let Some(job) = job {
            job();
        }
        return;
    }
    while h.state.load(Ordering::SeqCst) != DONE {
        std::hint::spin_loop();
    }
    h.state.store(IDLE, Ordering::SeqCst);
    h.busy.store(false, Ordering::SeqCst);
}

/// A row function of an elementwise step: (inputs, outputs, arena, constants, first row, end).
type RowFn =
    unsafe extern "C" fn(*const *const u8, *const *mut u8, *mut u8, *const *const u8, i64, i64);

/// The buffers of one call, handed to the threads that run its rows.
#[derive(Clone, Copy)]
struct Call {
    rows: RowFn,
    ins: *const *const u8,
    outs: *const *mut u8,
    arena: *mut u8,
    consts: *const *const u8,
}

// SAFETY: a `Call` is only sent by `run_rows`, which gives each thread a disjoint range of rows
// of one elementwise step. A row function writes only its rows of the step's destination (a
// buffer no other step of the call touches meanwhile) and reads buffers no thread writes; the
// entry function that called `jjt_par_map` keeps every buffer alive and waits for it.
unsafe impl Send for Call {}

/// Run rows `[lo, hi)` of `c` on up to `threads` threads (halving, this thread and a helper).
///
/// # Safety
/// As [`jjt_par_map`].
unsafe fn run_rows(c: Call, lo: i64, hi: i64, threads: i64) {
    if threads <= 1 || hi - lo < 2 {
        // SAFETY: forwarded from the caller.
        unsafe { (c.rows)(c.ins, c.outs, c.arena, c.consts, lo, hi) };
        return;
    }
    let left = threads / 2;
    let mid = lo + (hi - lo) * left / threads;
    join(
        // SAFETY: `[lo, mid)` and `[mid, hi)` are disjoint rows (see `Call`).
        move || unsafe { run_rows(c, lo, mid, left) },
        // SAFETY: as above; `join` returns only after this part has finished.
        move || unsafe { run_rows(c, mid, hi, threads - left) },
    );
}

/// Called by generated code: run the row function `rows` over rows `[0, n)` on up to `threads`
/// threads.
///
/// # Safety
/// `rows` must be a row function compiled for the same entry point as its caller, and the four
/// pointers the caller's own arguments (valid for the whole call).
pub(crate) unsafe extern "C" fn jjt_par_map(
    rows: RowFn,
    ins: *const *const u8,
    outs: *const *mut u8,
    arena: *mut u8,
    consts: *const *const u8,
    n: i64,
    threads: i64,
) {
    let c = Call { rows, ins, outs, arena, consts };
    // SAFETY: forwarded from the caller.
    unsafe { run_rows(c, 0, n, threads) }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Tiny parts, so every path happens many times: the helper runs the second part, the
    /// caller takes it back before the helper starts, or (from four callers at once) finds no
    /// idle helper. Each part must run exactly once per call, and `join` return after both.
    #[test]
    fn every_part_runs_exactly_once() {
        let seconds = Arc::new(AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let seconds = Arc::clone(&seconds);
                s.spawn(move || {
                    for i in 0..5000usize {
                        let mut first = 0;
                        let before = seconds.load(Ordering::SeqCst);
                        let done = Arc::new(AtomicBool::new(false));
                        let (sec, d) = (Arc::clone(&seconds), Arc::clone(&done));
                        join(
                            || first += 1,
                            move || {
                                sec.fetch_add(1, Ordering::SeqCst);
                                d.store(true, Ordering::SeqCst);
                            },
                        );
                        assert_eq!(first, 1, "call {i}");
                        assert!(done.load(Ordering::SeqCst), "call {i}: join returned early");
                        assert!(seconds.load(Ordering::SeqCst) > before);
                    }
                });
            }
        });
        assert_eq!(seconds.load(Ordering::SeqCst), 4 * 5000);
    }
}
