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
const DONE: u8 = 2;

type Job = Box<dyn FnOnce() + Send>;

struct Helper {
    /// Claimed by a caller (from posting a job until collecting its completion).
    busy: AtomicBool,
    /// `IDLE` → `POSTED` (by the caller) → `DONE` (by the helper) → `IDLE` (by the caller).
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
        let job = h.job.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(job) = job {
            // A panicking part must not leave its caller waiting forever; the product's
            // routines do not panic, so this only guards against the unexpected.
            let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
        }
        h.state.store(DONE, Ordering::SeqCst);
    }
}

/// Run `first` on this thread and `second` on an idle helper if there is one (else on this
/// thread too, after `first`); returns when both have finished.
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
    while h.state.load(Ordering::SeqCst) != DONE {
        std::hint::spin_loop();
    }
    h.state.store(IDLE, Ordering::SeqCst);
    h.busy.store(false, Ordering::SeqCst);
}
