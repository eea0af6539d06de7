//! What [`crate::compile_with`] may do: keep listings, strict (interpreter-identical)
//! arithmetic, the matrix multiply, the memory budget, profiling, threads.

/// Options for [`crate::compile_with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Keep the Cranelift IR text of the entry function ([`crate::Compiled::clif`]).
    pub keep_clif: bool,
    /// Keep Cranelift's machine-code listing ([`crate::Compiled::asm`]): the entry function's,
    /// then each row function's (the part of a step run on several threads), under its name.
    pub keep_asm: bool,
    /// Compute exactly what the interpreter computes, bit for bit: no FMA, no reassociated
    /// (vector) sums, no calls to the matrix multiply. Elementwise code is SIMD either way.
    pub strict: bool,
    /// Never call the matrix multiply (for measuring where it pays off); contractions that no
    /// inline vector form covers still run in the runtime contraction's dot loops.
    pub no_gemm: bool,
    /// Memory budget in bytes for the constants, the scratch arena and any single value, and
    /// for the packing scratch of each runtime contraction on all threads together, which
    /// stays allocated per thread between calls (0: [`MAX_BYTES`]).
    pub max_bytes: u64,
    /// Time every step of every call on the calling thread, for [`crate::take_profile`] (a call to a
    /// clock after each step; [`crate::Compiled::step_labels`] says what each step is).
    pub profile: bool,
    /// Threads a large matrix multiply may split across (0: every core, as
    /// `std::thread::available_parallelism` reports; 1: the calling thread only). The calling
    /// thread computes one part and process-wide helper threads (one per further core) the
    /// others; a part finding no idle helper (kernels called from several threads at once, as
    /// `jjt kernel --tile` does) runs on its caller, so the cores are shared, never
    /// oversubscribed. Helpers spin for 2 ms after each part before sleeping (see `pool`).
    pub threads: usize,
}

impl Options {
    /// The thread count a matrix multiply uses: [`Options::threads`], with 0 resolved to the
    /// number of cores.
    pub fn gemm_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            t => t,
        }
    }

    /// The memory budget: [`Options::max_bytes`], with 0 resolved to [`MAX_BYTES`].
    pub(crate) fn budget(&self) -> u64 {
        if self.max_bytes == 0 { MAX_BYTES } else { self.max_bytes }
    }
}

/// The most memory one compiled function may use for its constants and for its arena (each),
/// and the largest single value: 8 GiB.
pub const MAX_BYTES: u64 = 8 << 30;
