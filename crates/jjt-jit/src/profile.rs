//! Step timing for [`crate::Options::profile`]: the generated code calls [`jjt_profile_mark`]
//! before its first step (`-1`) and after each step `k`; the time since the previous mark is
//! added to step `k`'s total on the calling thread. [`take_profile`] reads and resets them.

use std::cell::RefCell;
use std::time::Instant;

thread_local! {
    /// The last mark, and seconds per step.
    static TOTALS: RefCell<(Option<Instant>, Vec<f64>)> = const { RefCell::new((None, Vec::new())) };
}

/// Called by generated code (with profiling on) after step `step`, or with -1 on entry.
pub(crate) extern "C" fn jjt_profile_mark(step: i64) {
    let now = Instant::now();
    TOTALS.with(|t| {
        let Ok(mut t) = t.try_borrow_mut() else { return };
        if let (Ok(k), Some(last)) = (usize::try_from(step), t.0) {
            if t.1.len() <= k {
                t.1.resize(k + 1, 0.0);
            }
            t.1[k] += now.duration_since(last).as_secs_f64();
        }
        t.0 = Some(now);
    });
}

/// Seconds spent in each step (index = step, as in [`crate::Compiled::step_labels`]) by the
/// profiled calls made on this thread since the last `take_profile`, which resets them.
pub fn take_profile() -> Vec<f64> {
    TOTALS.with(|t| t.try_borrow_mut().map(|mut t| std::mem::take(&mut t.1)).unwrap_or_default())
}
