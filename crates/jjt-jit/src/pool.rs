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
//!
//! **Panics.** A part that panics (a bug: the parts are generated code and the matrix
//! multiply) must neither leave its caller waiting nor let the call return `Ok` with a block
//! never written. [`join`] catches a panic in either part, waits for the other, and resumes the
//! panic on its caller (tagged with the thread it happened on, [`PartPanic`]); the runtime
//! functions that generated code calls catch it at their `extern "C"` boundary ([`guard`]:
//! unwinding through generated code is not allowed) and record it for the calling thread, and
//! [`crate::Compiled`]'s call returns [`crate::JitError::WorkerPanicked`]. Helpers survive a
//! panic and serve the next call.

use std::any::Any;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle helper spins before it sleeps.
pub const SPIN: Duration = Duration::from_millis(2);

const IDLE: u8 = 0;
const POSTED: u8 = 1;
const RUNNING: u8 = 2;
const DONE: u8 = 3;

type Job = Box<dyn FnOnce() + Send>;

/// A part that panicked: the thread it ran on and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PartPanic {
    /// The thread's name (`jjt-gemm-N` for a helper).
    pub thread: String,
    /// The panic message.
    pub message: String,
}

/// A caught panic as a [`PartPanic`]: one resumed from a nested part keeps its thread;
/// anything else happened on this thread.
fn tag(payload: Box<dyn Any + Send>) -> PartPanic {
    let payload = match payload.downcast::<PartPanic>() {
        Ok(p) => return *p,
        Err(other) => other,
    };
    let message = match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_string(),
        (None, Some(s)) => s.clone(),
        (None, None) => "a panic without a message".to_string(),
    };
    let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
    PartPanic { thread, message }
}

/// Run `part`, returning its panic if it panics.
fn catch(part: impl FnOnce()) -> Option<PartPanic> {
    catch_unwind(AssertUnwindSafe(part)).err().map(tag)
}

thread_local! {
    /// The first panic caught by [`guard`] on this thread since [`take_failure`].
    static FAILURE: Cell<Option<PartPanic>> = const { Cell::new(None) };
}

/// Run the body of a runtime function that generated code calls. Unwinding out of an
/// `extern "C"` function would abort the process, so a panic is caught here and recorded for
/// this thread; the generated code carries on (its results are discarded) and the handle's
/// call reports it ([`take_failure`]).
pub(crate) fn guard(body: impl FnOnce()) {
    let Some(part) = catch(body) else { return };
    FAILURE.with(|f| {
        let first = f.take().unwrap_or(part);
        f.set(Some(first));
    });
}

/// The panic [`guard`] recorded on this thread, if any (and forget it).
pub(crate) fn take_failure() -> Option<PartPanic> {
    FAILURE.with(Cell::take)
}

/// Which part of the next [`join`] panics, for tests ([`inject_panic`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedPanic {
    /// The part the caller computes itself.
    First,
    /// The part offered to a helper (run by the helper, or by the caller if it takes it back).
    Second,
}

/// No injected panic pending.
const NO_INJECTION: u8 = 0;
static INJECTED: AtomicU8 = AtomicU8::new(NO_INJECTION);

/// Test hook: make one part of the next [`join`] in this process panic. Production code never
/// calls it; a test calls it to check that such a failure reaches the caller.
#[doc(hidden)]
pub fn inject_panic(part: InjectedPanic) {
    let code = match part {
        InjectedPanic::First => 1,
        InjectedPanic::Second => 2,
    };
    INJECTED.store(code, Ordering::SeqCst);
}

/// The injected panic for this join, if one is pending (it fires once).
fn take_injection() -> Option<InjectedPanic> {
    if INJECTED.load(Ordering::Relaxed) == NO_INJECTION {
        return None;
    }
    match INJECTED.swap(NO_INJECTION, Ordering::SeqCst) {
        1 => Some(InjectedPanic::First),
        2 => Some(InjectedPanic::Second),
        _ => None,
    }
}

struct Helper {
    /// Claimed by a caller (from posting a job until collecting its completion).
    busy: AtomicBool,
    /// `IDLE` → `POSTED` (by the caller) → `RUNNING` → `DONE` (by the helper) → `IDLE` (by
    /// the caller); or `POSTED` → `IDLE` when the caller takes a job back that the helper has
    /// not started.
    state: AtomicU8,
    job: Mutex<Option<Job>>,
    /// The panic of the last job, until its caller collects it.
    panic: Mutex<Option<PartPanic>>,
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
                panic: Mutex::new(None),
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
            // A panicking part must not leave its caller waiting forever, nor kill the helper:
            // the panic goes to the caller, who resumes it.
            if let Some(p) = catch(job) {
                *h.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
            }
        }
        h.state.store(DONE, Ordering::SeqCst);
    }
}

/// Run `first` on this thread and `second` on an idle helper if there is one (else, or if the
/// helper has not started it by the time `first` is done, on this thread after `first`);
/// returns when both have finished. If either panicked, the panic is resumed here after both
/// have finished (the first part's if both did), as a [`PartPanic`].
pub(crate) fn join(first: impl FnOnce(), second: impl FnOnce() + Send + 'static) {
    let injected = take_injection();
    let first = move || {
        if injected == Some(InjectedPanic::First) {
            panic!("injected panic in the caller's part");
        }
        first()
    };
    let second = move || {
        if injected == Some(InjectedPanic::Second) {
            panic!("injected panic in the helper's part");
        }
        second()
    };
    let claimed = helpers()
        .iter()
        .find(|h| h.busy.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_ok());
    let Some(h) = claimed else {
        let a = catch(first);
        let b = catch(second);
        return resume(a.or(b));
    };
    *h.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(second));
    h.state.store(POSTED, Ordering::SeqCst);
    if h.parked.load(Ordering::SeqCst) {
        let _guard = h.sleep.lock().unwrap_or_else(|e| e.into_inner());
        h.wake.notify_one();
    }
    // The helper may be writing its block: even if `first` panics, wait for it below.
    let a = catch(first);
    // A helper that has not started yet (the host may not have scheduled it) loses its job to
    // the caller, who is free now; one that has started is waited for.
    if h.state.compare_exchange(POSTED, IDLE, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
        let job = h.job.lock().unwrap_or_else(|e| e.into_inner()).take();
        h.busy.store(false, Ordering::SeqCst);
        let b = job.and_then(catch);
        return resume(a.or(b));
    }
    while h.state.load(Ordering::SeqCst) != DONE {
        std::hint::spin_loop();
    }
    let b = h.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
    h.state.store(IDLE, Ordering::SeqCst);
    h.busy.store(false, Ordering::SeqCst);
    resume(a.or(b));
}

/// Run `body(i)` for every `i` in `0..n`, each exactly once, on this thread and up to
/// `threads - 1` helpers: every thread claims the next index until none is left, so a helper
/// that starts late or runs slowly (a host that shares its core with another tenant) takes
/// fewer, and nobody waits for a fixed half. Returns when every index has finished; a panic in
/// any index is resumed here as by [`join`].
///
/// Which thread runs an index depends on timing, so `body` must compute the same result for an
/// index whichever thread runs it (the callers' indices are disjoint blocks of output).
pub(crate) fn share<F: Fn(usize) + Sync>(n: usize, threads: usize, body: &F) {
    let next = AtomicUsize::new(0);
    let work = Work {
        next: &raw const next,
        n,
        ctx: std::ptr::from_ref(body).cast(),
        call: call_index::<F>,
    };
    // SAFETY: `next` and `body` outlive every thread's use of them: `spread` returns only after
    // every part it handed out has finished (`join`'s contract).
    unsafe { spread(work, threads.max(1)) }
}

/// Run the index `i` of the closure `ctx` points to (an `F`).
///
/// # Safety
/// `ctx` points to a live `F`.
unsafe fn call_index<F: Fn(usize)>(ctx: *const (), i: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { (*ctx.cast::<F>())(i) }
}

/// What [`share`] hands to each thread: the shared counter and the type-erased body.
#[derive(Clone, Copy)]
struct Work {
    next: *const AtomicUsize,
    n: usize,
    ctx: *const (),
    call: unsafe fn(*const (), usize),
}

// SAFETY: a `Work` crosses to a helper only inside `spread`, whose `join` returns after the
// helper's part has finished, while the caller of `share` keeps the counter and the body
// alive; the body is `Sync` and the counter atomic.
unsafe impl Send for Work {}

/// Claim and run indices of `w` on this thread and `threads - 1` helpers.
///
/// # Safety
/// `w`'s pointers are live until this returns.
unsafe fn spread(w: Work, threads: usize) {
    if threads <= 1 {
        loop {
            // SAFETY: live (the caller's contract).
            let i = unsafe { &*w.next }.fetch_add(1, Ordering::Relaxed);
            if i >= w.n {
                return;
            }
            // SAFETY: as above.
            unsafe { (w.call)(w.ctx, i) };
        }
    }
    let left = threads / 2;
    join(
        // SAFETY: forwarded; `join` returns after both parts.
        move || unsafe { spread(w, left) },
        // SAFETY: as above.
        move || unsafe { spread(w, threads - left) },
    );
}

/// Resume `panic` on this thread, if there is one.
fn resume(panic: Option<PartPanic>) {
    if let Some(p) = panic {
        resume_unwind(Box::new(p));
    }
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

// SAFETY: a `Call` is only shared by `run_rows`, which gives each piece of rows to one thread:
// disjoint ranges of rows of one elementwise step or reduction (or of parts of a reduction to
// one value). A row function writes only its rows of the step's destination (a buffer no other
// step of the call touches meanwhile), or its parts' slots of the part sums in the calling
// entry's stack frame, and reads buffers no thread writes; the entry function that called
// `jjt_par_map` keeps every buffer (and its frame) alive and waits for it.
unsafe impl Send for Call {}
// SAFETY: as for `Send`: the threads sharing a `Call` only read it and call its row function
// on disjoint rows.
unsafe impl Sync for Call {}

impl Call {
    /// Run rows `[lo, hi)`.
    ///
    /// # Safety
    /// As [`jjt_par_map`], and no other thread runs these rows meanwhile.
    unsafe fn run(&self, lo: i64, hi: i64) {
        // SAFETY: forwarded from the caller.
        unsafe { (self.rows)(self.ins, self.outs, self.arena, self.consts, lo, hi) }
    }
}

/// Pieces per thread into which [`run_rows`] cuts a step's rows (when it has that many), so
/// that a thread that falls behind takes fewer of them ([`share`]).
const ROW_PIECES_PER_THREAD: i64 = 8;

/// Run rows `[lo, hi)` of `c` on up to `threads` threads, in contiguous pieces that the threads
/// claim as they go ([`share`]).
///
/// # Safety
/// As [`jjt_par_map`].
unsafe fn run_rows(c: Call, lo: i64, hi: i64, threads: i64) {
    if threads <= 1 || hi - lo < 2 {
        // SAFETY: forwarded from the caller.
        unsafe { c.run(lo, hi) };
        return;
    }
    let pieces = (hi - lo).min(threads * ROW_PIECES_PER_THREAD);
    let at = |p: i64| lo + (hi - lo) * p / pieces;
    share(pieces as usize, threads as usize, &|p: usize| {
        let p = p as i64;
        // SAFETY: the pieces `[at(p), at(p + 1))` are disjoint rows (see `Call`), each run once.
        unsafe { c.run(at(p), at(p + 1)) };
    });
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
    // SAFETY: forwarded from the caller. A panic in a part stops at `guard`.
    guard(move || unsafe { run_rows(c, 0, n, threads) })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// The helpers are process-wide: tests that need them to themselves take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// Tiny parts, so every path happens many times: the helper runs the second part, the
    /// caller takes it back before the helper starts, or (from four callers at once) finds no
    /// idle helper. Each part must run exactly once per call, and `join` return after both.
    #[test]
    fn every_part_runs_exactly_once() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
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

    /// `share` runs every index exactly once, from several callers at once (so some find no
    /// idle helper), for counts below, at and above the thread count.
    #[test]
    fn shared_indices_run_exactly_once() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        std::thread::scope(|s| {
            for caller in 0..3usize {
                s.spawn(move || {
                    for n in [0usize, 1, 2, 7, 64] {
                        let ran: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                        share(n, 2 + caller, &|i| {
                            ran[i].fetch_add(1, Ordering::SeqCst);
                        });
                        let counts: Vec<usize> =
                            ran.iter().map(|r| r.load(Ordering::SeqCst)).collect();
                        assert_eq!(counts, vec![1; n], "caller {caller}, n = {n}");
                    }
                });
            }
        });
    }

    /// A helper that falls behind takes fewer indices: the helper's first index does not end
    /// until the caller has run every other one (or 5 s have passed), so with indices claimed
    /// as threads go the caller runs all but that one, where a fixed split would leave half of
    /// them to the helper.
    #[test]
    fn a_slow_helper_takes_fewer_indices() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        if helpers().is_empty() {
            return;
        }
        let caller = std::thread::current().id();
        let n = 32;
        let by_caller = AtomicUsize::new(0);
        let by_helper = AtomicUsize::new(0);
        share(n, 2, &|_| {
            if std::thread::current().id() == caller {
                by_caller.fetch_add(1, Ordering::SeqCst);
                return;
            }
            by_helper.fetch_add(1, Ordering::SeqCst);
            let t = Instant::now();
            while by_caller.load(Ordering::SeqCst) + by_helper.load(Ordering::SeqCst) < n
                && t.elapsed() < Duration::from_secs(5)
            {
                std::hint::spin_loop();
            }
        });
        let (c, h) = (by_caller.load(Ordering::SeqCst), by_helper.load(Ordering::SeqCst));
        assert_eq!(c + h, n);
        assert!(h <= 1, "the slow helper ran {h} of {n} indices");
    }

    /// `join` run inside `catch_unwind`: the panic it resumed, if any.
    fn joined(first: impl FnOnce(), second: impl FnOnce() + Send + 'static) -> Option<PartPanic> {
        let r = catch_unwind(AssertUnwindSafe(|| join(first, second)));
        r.err().map(|p| *p.downcast::<PartPanic>().expect("join resumes a PartPanic"))
    }

    /// A panic in the helper's part reaches the caller (tagged with the helper's name), a panic
    /// in the caller's part is resumed only after the helper's part has finished, and the
    /// helper serves the next join afterwards; three rounds, so a helper that died or stayed
    /// claimed would show.
    #[test]
    fn a_panicking_part_reaches_the_caller_and_the_pool_keeps_working() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let have_helper = !helpers().is_empty();
        for round in 0..3 {
            // The caller's part waits (at most 5 s) until the second part has started, so a
            // helper, not the caller taking it back, runs it.
            let started = Arc::new(AtomicBool::new(false));
            let s = Arc::clone(&started);
            let p = joined(
                || {
                    let t = Instant::now();
                    while !started.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(5) {
                        std::hint::spin_loop();
                    }
                },
                move || {
                    s.store(true, Ordering::SeqCst);
                    panic!("helper part {round} fails");
                },
            )
            .expect("the helper's panic reaches the caller");
            assert_eq!(p.message, format!("helper part {round} fails"));
            if have_helper {
                assert!(p.thread.starts_with("jjt-gemm-"), "ran on {}", p.thread);
            }

            // The caller's part panics at once; the helper's part is still writing.
            let finished = Arc::new(AtomicBool::new(false));
            let f = Arc::clone(&finished);
            let p = joined(
                || panic!("caller part {round} fails"),
                move || {
                    std::thread::sleep(Duration::from_millis(20));
                    f.store(true, Ordering::SeqCst);
                },
            )
            .expect("the caller's panic is resumed");
            assert_eq!(p.message, format!("caller part {round} fails"));
            assert!(finished.load(Ordering::SeqCst), "join resumed before the other part ended");

            // The pool still works: both parts run, nothing is reported.
            let ran = Arc::new(AtomicUsize::new(0));
            let r = Arc::clone(&ran);
            let mut first = 0;
            let p = joined(
                || first += 1,
                move || {
                    r.fetch_add(1, Ordering::SeqCst);
                },
            );
            assert_eq!((p, first, ran.load(Ordering::SeqCst)), (None, 1, 1));
        }
        assert!(
            helpers().iter().all(|h| !h.busy.load(Ordering::SeqCst)),
            "every helper is free again"
        );
    }

    /// `guard` stops a panic (as the `extern "C"` runtime functions need) and keeps the first
    /// one for `take_failure`, which forgets it.
    #[test]
    fn guard_records_the_first_panic_for_this_thread() {
        assert_eq!(take_failure(), None);
        guard(|| {});
        assert_eq!(take_failure(), None);
        guard(|| panic!("first"));
        guard(|| panic!("second"));
        let f = take_failure().expect("recorded");
        assert_eq!(f.message, "first");
        assert_eq!(Some(f.thread.as_str()), std::thread::current().name());
        assert_eq!(take_failure(), None);
    }
}
