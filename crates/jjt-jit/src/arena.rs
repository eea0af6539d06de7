//! The memory plan: every scratch buffer gets an offset in one arena, so that buffers whose
//! lifetimes (first write to last read, in step order) do not overlap share memory. First-fit
//! over the free intervals, 64-byte aligned. The arena is allocated once per handle (and per
//! concurrent caller) and reused across calls.
//!
//! A fused step's rows ([`crate::plan::FusedStep`]) go to a buffer of the thread that
//! computes them instead (`jjt_row_buffer`), grown as needed and kept for the thread's life.

use crate::plan::{Buf, Plan};

/// Alignment of every scratch buffer, in bytes.
pub const ALIGN: usize = 64;

/// Offsets of the scratch buffers and the arena size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Byte offset of scratch buffer `i`.
    pub offsets: Vec<usize>,
    /// Bytes the arena needs (the peak of simultaneously live buffers, with alignment).
    pub size: usize,
}

fn round_up(x: usize) -> usize {
    x.div_ceil(ALIGN) * ALIGN
}

/// Place the scratch buffers of `plan`.
pub fn layout(plan: &Plan) -> Layout {
    let n = plan.scratch.len();
    let mut first = vec![usize::MAX; n];
    let mut last = vec![0usize; n];
    for (s, step) in plan.steps.iter().enumerate() {
        let mut touch = |b: Buf| {
            if let Buf::Scratch(i) = b {
                first[i] = first[i].min(s);
                last[i] = last[i].max(s);
            }
        };
        for v in step.writes().into_iter().chain(step.reads()) {
            touch(v.buf);
        }
    }
    // Live intervals [offset, offset+size) currently allocated, with the step they die after.
    let mut live: Vec<(usize, usize, usize)> = Vec::new();
    let mut offsets = vec![0usize; n];
    let mut size = 0usize;
    let mut by_start: Vec<usize> = (0..n).filter(|&i| first[i] != usize::MAX).collect();
    by_start.sort_by_key(|&i| (first[i], i));
    for i in by_start {
        live.retain(|&(_, _, dies)| dies >= first[i]);
        live.sort_unstable();
        let need = round_up(plan.scratch[i].max(1));
        let mut at = 0usize;
        for &(o, sz, _) in &live {
            if o >= at + need {
                break;
            }
            at = at.max(round_up(o + sz));
        }
        offsets[i] = at;
        size = size.max(at + need);
        live.push((at, need, last[i]));
    }
    Layout { offsets, size }
}

thread_local! {
    /// This thread's row buffer, in 64-byte words.
    static ROW: std::cell::RefCell<Vec<[u8; ALIGN]>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Called by generated code: the calling thread's row buffer, at least `bytes` long and
/// aligned to [`ALIGN`] bytes, for one fused step's rows. It stays valid until the thread
/// calls this again: a row function takes it once, and nothing it calls takes it.
pub(crate) extern "C" fn jjt_row_buffer(bytes: i64) -> *mut u8 {
    let words = usize::try_from(bytes).unwrap_or(0).div_ceil(ALIGN);
    ROW.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() < words {
            r.resize(words, [0; ALIGN]);
        }
        r.as_mut_ptr().cast()
    })
}
