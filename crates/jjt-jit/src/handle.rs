//! The [`Compiled`] handle: owns the machine code and constants, checks arguments, and gives
//! each concurrent call its own scratch arena.

use std::fmt;
use std::sync::Mutex;

use cranelift_jit::JITModule;
use jjt_ir::{DType, Data, Tensor, TensorType};

use crate::{JitError, plan, pool};

/// Scratch memory for one call: `u64` words (so 8-byte aligned), with the arena starting at
/// the first 64-byte boundary inside, or, for an arena of [`HUGE_PAGE`] or more, at the first
/// 2 MiB boundary, with the words from there asked to be backed by huge pages before they are
/// first touched (Linux `madvise(MADV_HUGEPAGE)`; advisory, ignored where unsupported). Huge
/// pages spare the TLB misses of large buffers and fix which cache sets the buffers within
/// each 2 MiB fall in, where 4 KiB pages land anywhere: alternating processes measured the
/// zoo's mixer at 12.96 → 12.37 ms and its transformer at 63.9 → 60.3 ms (medians; the
/// process-to-process spread of this shared machine, up to 1.6×, remains).
pub(crate) struct Arena {
    words: Vec<u64>,
    align: usize,
}

/// A huge page's size on x86-64 Linux: arenas at least this large start on its boundary.
const HUGE_PAGE: usize = 2 << 20;

impl Arena {
    fn new(bytes: usize) -> Result<Arena, JitError> {
        let align = if bytes >= HUGE_PAGE { HUGE_PAGE } else { 64 };
        let n = (bytes + align).div_ceil(8);
        let mut words: Vec<u64> = Vec::new();
        words.try_reserve_exact(n).map_err(|_| JitError::Alloc(bytes))?;
        if align == HUGE_PAGE {
            let p = words.as_mut_ptr().cast::<u8>();
            let start = p.align_offset(HUGE_PAGE);
            let len = (n * 8).saturating_sub(start) / HUGE_PAGE * HUGE_PAGE;
            advise_huge_pages(p.wrapping_add(start), len);
        }
        words.resize(n, 0);
        Ok(Arena { words, align })
    }

    fn base(&mut self) -> *mut u8 {
        let p = self.words.as_mut_ptr().cast::<u8>();
        p.wrapping_add(p.align_offset(self.align))
    }
}

/// Ask the kernel to back `[p, p + len)` (2 MiB aligned, inside one allocation not yet
/// touched) with huge pages. A hint: its failure changes nothing but speed.
#[cfg(target_os = "linux")]
fn advise_huge_pages(p: *mut u8, len: usize) {
    const MADV_HUGEPAGE: i32 = 14;
    unsafe extern "C" {
        fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
    }
    if len > 0 {
        // SAFETY: madvise with MADV_HUGEPAGE only changes how the range's pages are backed,
        // never their contents or validity; the range lies inside the caller's allocation
        // and starts on a page boundary.
        unsafe { madvise(p.cast(), len, MADV_HUGEPAGE) };
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_p: *mut u8, _len: usize) {}

/// The entry point's C ABI: (inputs, outputs, arena, constants).
pub(crate) type Entry =
    unsafe extern "C" fn(*const *const u8, *const *mut u8, *mut u8, *const *const u8);

/// A compiled function. Owns its machine code (freed on drop) and constants; `call` takes
/// `&self` and may run on many threads at once, each with its own scratch arena.
pub struct Compiled {
    pub(crate) name: String,
    pub(crate) entry: Entry,
    pub(crate) module: Mutex<Option<JITModule>>,
    pub(crate) params: Vec<(String, TensorType)>,
    pub(crate) outputs: Vec<TensorType>,
    pub(crate) consts: Vec<Data>,
    pub(crate) arena_bytes: usize,
    pub(crate) arenas: Mutex<Vec<Arena>>,
    pub(crate) clif: Option<String>,
    pub(crate) asm: Option<String>,
    pub(crate) steps: usize,
    pub(crate) step_labels: Vec<String>,
    pub(crate) step_nodes: Vec<Option<jjt_ir::NodeId>>,
    /// The runtime contractions' descriptors: the code holds their addresses, so they are
    /// freed with it (never moved out of their boxes).
    #[expect(
        clippy::vec_box,
        reason = "the code holds each descriptor's address: boxes never move"
    )]
    pub(crate) descriptors: Vec<Box<crate::contract::Descriptor>>,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compiled")
            .field("name", &self.name)
            .field("inputs", &self.params)
            .field("outputs", &self.outputs)
            .field("arena_bytes", &self.arena_bytes)
            .field("steps", &self.steps)
            .field("runtime_contractions", &self.descriptors.len())
            .finish_non_exhaustive()
    }
}

fn data_ptr(d: &Data) -> *const u8 {
    match d {
        Data::F32(v) => v.as_ptr().cast(),
        Data::F64(v) => v.as_ptr().cast(),
        Data::I32(v) => v.as_ptr().cast(),
        Data::Bool(v) => v.as_ptr().cast(),
    }
}

fn data_mut_ptr(d: &mut Data) -> *mut u8 {
    match d {
        Data::F32(v) => v.as_mut_ptr().cast(),
        Data::F64(v) => v.as_mut_ptr().cast(),
        Data::I32(v) => v.as_mut_ptr().cast(),
        Data::Bool(v) => v.as_mut_ptr().cast(),
    }
}

fn zeros(ty: &TensorType) -> Result<Data, JitError> {
    let n = ty.numel();
    let bytes = n.saturating_mul(plan::item_size(ty.dtype));
    Ok(match ty.dtype {
        DType::F32 => {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| JitError::Alloc(bytes))?;
            v.resize(n, 0.0f32);
            Data::F32(v)
        }
        DType::F64 => {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| JitError::Alloc(bytes))?;
            v.resize(n, 0.0f64);
            Data::F64(v)
        }
        DType::I32 => {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| JitError::Alloc(bytes))?;
            v.resize(n, 0i32);
            Data::I32(v)
        }
        DType::Bool => {
            let mut v = Vec::new();
            v.try_reserve_exact(n).map_err(|_| JitError::Alloc(bytes))?;
            v.resize(n, false);
            Data::Bool(v)
        }
    })
}

/// Each raw buffer (`what`: "input" or "output") must hold exactly its type's bytes.
fn check_sizes<'t>(
    what: &'static str,
    lens: impl Iterator<Item = usize>,
    types: impl IntoIterator<Item = &'t TensorType>,
) -> Result<(), JitError> {
    for (index, (actual, t)) in lens.zip(types).enumerate() {
        let expected = t.numel() * plan::item_size(t.dtype);
        if actual != expected {
            return Err(JitError::BufferSize { what, index, expected, actual });
        }
    }
    Ok(())
}

impl Compiled {
    /// Run on `inputs` (in signature order); returns the outputs, or
    /// [`JitError::WorkerPanicked`] if a part of a multi-threaded step panicked.
    pub fn call(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>, JitError> {
        self.check_inputs(inputs)?;
        let mut outs: Vec<Tensor> = self
            .outputs
            .iter()
            .map(|t| Ok(Tensor { shape: t.shape.clone(), data: zeros(t)? }))
            .collect::<Result<_, JitError>>()?;
        let in_ptrs: Vec<*const u8> = inputs.iter().map(|t| data_ptr(&t.data)).collect();
        let out_ptrs: Vec<*mut u8> = outs.iter_mut().map(|t| data_mut_ptr(&mut t.data)).collect();
        self.run(&in_ptrs, &out_ptrs)?;
        Ok(outs)
    }

    /// Run on raw little-endian buffers (inputs in signature order; outputs written in place).
    /// Buffers may start at any address; their lengths must match the types exactly.
    pub fn call_raw(&self, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) -> Result<(), JitError> {
        self.check_count(inputs.len())?;
        let lens = inputs.iter().map(|b| b.len());
        check_sizes("input", lens, self.params.iter().map(|(_, t)| t))?;
        if outputs.len() != self.outputs.len() {
            return Err(JitError::BufferSize {
                what: "output count",
                index: 0,
                expected: self.outputs.len(),
                actual: outputs.len(),
            });
        }
        check_sizes("output", outputs.iter().map(|b| b.len()), &self.outputs)?;
        let in_ptrs: Vec<*const u8> = inputs.iter().map(|b| b.as_ptr()).collect();
        let out_ptrs: Vec<*mut u8> = outputs.iter_mut().map(|b| b.as_mut_ptr()).collect();
        self.run(&in_ptrs, &out_ptrs)
    }

    /// The number of inputs must be the function's.
    fn check_count(&self, got: usize) -> Result<(), JitError> {
        if got != self.params.len() {
            return Err(JitError::InputCount {
                function: self.name.clone(),
                expected: self.params.len(),
                got,
            });
        }
        Ok(())
    }

    fn check_inputs(&self, inputs: &[&Tensor]) -> Result<(), JitError> {
        self.check_count(inputs.len())?;
        for (index, (t, (name, ty))) in inputs.iter().zip(&self.params).enumerate() {
            let consistent = t.data.len() == t.shape.checked_numel().unwrap_or(usize::MAX);
            if t.ty() != *ty || !consistent {
                return Err(JitError::InputType {
                    index,
                    name: name.clone(),
                    expected: ty.clone(),
                    actual: t.ty(),
                });
            }
        }
        Ok(())
    }

    fn run(&self, inputs: &[*const u8], outputs: &[*mut u8]) -> Result<(), JitError> {
        let mut arena = match self.arenas.lock().map(|mut pool| pool.pop()) {
            Ok(Some(a)) => a,
            _ => Arena::new(self.arena_bytes)?,
        };
        let consts: Vec<*const u8> = self.consts.iter().map(data_ptr).collect();
        // Nothing is pending on this thread (every call collects its own), but be sure.
        let _ = pool::take_failure();
        // SAFETY: the entry point was compiled from a verified graph whose every memory access
        // stays within the buffers described by the signature types: `inputs` and `outputs`
        // hold one pointer per parameter / output, each to at least the number of bytes its
        // type needs (checked by the callers `call` / `call_raw`); `consts` points to the
        // constants this handle owns; the arena is at least `arena_bytes` long from its 64-byte
        // aligned base and used by this call only. Outputs do not alias inputs (distinct
        // borrows). The code memory is alive: `self.module` is freed only in `drop`.
        unsafe { (self.entry)(inputs.as_ptr(), outputs.as_ptr(), arena.base(), consts.as_ptr()) };
        if let Ok(mut pool) = self.arenas.lock() {
            pool.push(arena);
        }
        // A part of a multi-threaded step that panicked left its block unwritten.
        match pool::take_failure() {
            Some(p) => Err(JitError::WorkerPanicked { thread: p.thread, message: p.message }),
            None => Ok(()),
        }
    }

    /// Bytes of scratch memory one call uses (the arena; inputs and outputs not counted).
    pub fn arena_bytes(&self) -> usize {
        self.arena_bytes
    }

    /// The input types, in order.
    pub fn inputs(&self) -> impl Iterator<Item = &TensorType> {
        self.params.iter().map(|(_, t)| t)
    }

    /// The output types, in order.
    pub fn outputs(&self) -> &[TensorType] {
        &self.outputs
    }

    /// The Cranelift IR, if kept ([`crate::Options::keep_clif`]).
    pub fn clif(&self) -> Option<&str> {
        self.clif.as_deref()
    }

    /// The machine code listing, if kept ([`crate::Options::keep_asm`]).
    pub fn asm(&self) -> Option<&str> {
        self.asm.as_deref()
    }

    /// Number of loop steps in the generated code.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// What each step is (kind, types, and how it was compiled), in execution order: the
    /// entries of [`crate::take_profile`] for this function.
    pub fn step_labels(&self) -> &[String] {
        &self.step_labels
    }

    /// The graph node each step computes, in the order of [`Compiled::step_labels`]: `None`
    /// for a copy into an output buffer. Fused nodes have no step of their own; their work is
    /// in the step of the node that stores them.
    pub fn step_nodes(&self) -> &[Option<jjt_ir::NodeId>] {
        &self.step_nodes
    }
}

impl Drop for Compiled {
    fn drop(&mut self) {
        let module = match self.module.get_mut() {
            Ok(m) => m.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(m) = module {
            // SAFETY: `drop` has `&mut self`, so no call through `entry` is running or can start;
            // `entry` is private and dies with `self`.
            unsafe { m.free_memory() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An arena's base is 64-byte aligned, a large one's on a huge page's boundary, and each
    /// holds its bytes from its base on.
    #[test]
    fn arenas_are_aligned_and_hold_their_bytes() {
        for (bytes, align) in
            [(1000, 64), (HUGE_PAGE - 8, 64), (HUGE_PAGE, HUGE_PAGE), (5 << 20, HUGE_PAGE)]
        {
            let mut a = Arena::new(bytes).unwrap();
            let base = a.base();
            assert_eq!(base as usize % align, 0, "{bytes} bytes");
            let start = a.words.as_ptr() as usize;
            assert!(base as usize - start + bytes <= a.words.len() * 8, "{bytes} bytes");
        }
    }
}
