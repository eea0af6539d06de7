//! Large contractions call a tuned matrix multiply (the `matrixmultiply` crate) through a
//! registered symbol: C = A·B with arbitrary (element) strides, for f32 and f64.
//!
//! The generated code calls these only for contractions whose M·N·K reaches
//! [`GEMM_THRESHOLD`], whose M and N reach [`GEMM_MIN_MN`], and whose axes flatten to
//! (M, K)·(K, N) with one stride each (other axes become loops around the call); smaller ones
//! are emitted inline with SIMD. The thresholds are measured with
//! `cargo run --release -p jjt-jit --example gemm_threshold`.
//!
//! **matrixmultiply or gemm.** Both crates were measured on this machine (AMD EPYC with
//! AVX-512, f32, row-major, median of 15 calls, µs):
//!
//! | M×K×N | matrixmultiply | gemm, 1 thread | gemm, 2 threads |
//! |---|---|---|---|
//! | 32×784×512 | 585 | 433 | 325 |
//! | 320×512×512 | 1206 | 1961 | 2251 |
//! | 32×512×512 | 203 | 226 | 357 |
//! | 64×64×64 | 7.5 | 6.5 | 6.2 |
//! | 16×512×16 | 7.8 | 2.9 | 2.8 |
//!
//! Neither wins everywhere; `gemm` is faster on small and skinny products, `matrixmultiply` on
//! the large square ones, and above the thresholds (where only large products arrive) the two
//! are within 1.4× of each other. `matrixmultiply` is used: it is small, pure Rust, and builds
//! in seconds.

/// Multiply-adds from which a contraction calls the matrix multiply instead of inline loops.
pub const GEMM_THRESHOLD: usize = 1 << 15;

/// The smaller of M and N from which the matrix multiply pays off: below it the inline loops
/// (vectorised over the output or along K) win, because the library packs both operands.
/// Measured with `cargo run --release -p jjt-jit --example gemm_threshold` on this machine
/// (AMD EPYC, AVX-512, f32, median µs inline / gemm):
///
/// | M×K×N | inline | gemm |
/// |---|---|---|
/// | 5×10000×5 | 134 | 422 |
/// | 4×784×512 | 555 | 924 |
/// | 8×512×8 | 13.4 | 13.3 |
/// | 16×512×16 | 52 | 8.8 |
/// | 64×64×64 | 100 | 7.8 |
/// | 320×512×512 | 28 500 | 1 727 |
pub const GEMM_MIN_MN: usize = 8;

/// Multiply-adds from which a matrix multiply is split across threads. Below it the cost of
/// waking a pool thread (a few microseconds) is not repaid; above it each half still runs
/// for ≥ 40 µs on this machine.
pub const PAR_THRESHOLD: usize = 1 << 22;

/// The smallest extent (rows of A or columns of B) a thread's share is cut to: a multiple of
/// the micro-kernels' register tiles, so a split never leaves a ragged tile on both sides.
const PAR_GRAIN: usize = 32;

/// One strided product `c = a·b`, as passed by the generated code.
struct Product<T> {
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    rsa: isize,
    csa: isize,
    b: *const T,
    rsb: isize,
    csb: isize,
    c: *mut T,
    rsc: isize,
    csc: isize,
}

// Not derived: a derive would require `T: Copy`, and only the pointers are copied.
impl<T> Clone for Product<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Product<T> {}

// SAFETY: a `Product` is only sent to another thread by `run_split`, which cuts the output into
// disjoint row or column blocks; each thread writes only its own block of `c` and reads `a` and
// `b`, which no thread writes. The caller of `jjt_sgemm`/`jjt_dgemm` keeps every buffer alive
// until the call returns, and `pool::join` returns only after both halves finish.
unsafe impl<T> Send for Product<T> {}

/// Which output axis a product is cut along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// Rows of A and C.
    Rows,
    /// Columns of B and C.
    Cols,
}

impl<T> Product<T> {
    /// The axis to cut along (the longer one) and its extent.
    fn longer(&self) -> (Cut, usize) {
        if self.n > self.m { (Cut::Cols, self.n) } else { (Cut::Rows, self.m) }
    }

    /// Split into the first `at` rows (or columns) and the rest.
    fn cut(self, at: usize, along: Cut) -> (Self, Self) {
        let mut first = self;
        let mut second = self;
        match along {
            Cut::Cols => {
                first.n = at;
                second.n = self.n - at;
                second.b = self.b.wrapping_offset(at as isize * self.csb);
                second.c = self.c.wrapping_offset(at as isize * self.csc);
            }
            Cut::Rows => {
                first.m = at;
                second.m = self.m - at;
                second.a = self.a.wrapping_offset(at as isize * self.rsa);
                second.c = self.c.wrapping_offset(at as isize * self.rsc);
            }
        }
        (first, second)
    }
}

/// Run `p` on up to `threads` threads: halve the longer of M and N (in multiples of
/// [`PAR_GRAIN`]) and recurse with [`crate::pool::join`] (this thread and a helper), until a part is below [`PAR_THRESHOLD`] or
/// has one thread. Every output element is computed by one single-threaded call, so the
/// result does not depend on the thread count.
///
/// # Safety
/// As [`jjt_sgemm`].
unsafe fn run_split<T: 'static>(p: Product<T>, threads: usize, one: unsafe fn(Product<T>)) {
    let work = p.m.saturating_mul(p.n).saturating_mul(p.k);
    let (along, extent) = p.longer();
    if threads <= 1 || work < PAR_THRESHOLD || extent < 2 * PAR_GRAIN {
        // SAFETY: forwarded from the caller.
        unsafe { one(p) };
        return;
    }
    let left = threads / 2;
    let at = (extent * left / threads).div_ceil(PAR_GRAIN) * PAR_GRAIN;
    let at = at.clamp(PAR_GRAIN, extent - PAR_GRAIN);
    let (x, y) = p.cut(at, along);
    crate::pool::join(
        // SAFETY: `x` and `y` write disjoint blocks of the caller's output (see `Product`).
        move || unsafe { run_split(x, left, one) },
        // SAFETY: as above; `pool::join` returns only after this part has finished.
        move || unsafe { run_split(y, threads - left, one) },
    );
}

/// # Safety
/// As [`jjt_sgemm`]; the pointers are aligned.
unsafe fn sgemm_one(p: Product<f32>) {
    // SAFETY: the caller (generated code) guarantees the pointers cover the strided ranges and
    // that `c` is a distinct buffer; they are aligned, as matrixmultiply needs.
    unsafe {
        matrixmultiply::sgemm(
            p.m, p.k, p.n, 1.0, p.a, p.rsa, p.csa, p.b, p.rsb, p.csb, 0.0, p.c, p.rsc, p.csc,
        )
    }
}

/// # Safety
/// As [`jjt_sgemm`]; the pointers are aligned.
unsafe fn dgemm_one(p: Product<f64>) {
    // SAFETY: as in `sgemm_one`.
    unsafe {
        matrixmultiply::dgemm(
            p.m, p.k, p.n, 1.0, p.a, p.rsa, p.csa, p.b, p.rsb, p.csb, 0.0, p.c, p.rsc, p.csc,
        )
    }
}

/// `c[m×n] = a[m×k]·b[k×n]` in f32, strides in elements, on up to `threads` threads.
///
/// The thirteen arguments are the C ABI the generated code calls (`gemm_call` in `codegen`),
/// so they are not grouped into a struct here; [`Product`] groups them on entry.
///
/// # Safety
/// The pointers must be valid for every element the dimensions and strides address, and `c`
/// must not overlap `a` or `b`.
pub(crate) unsafe extern "C" fn jjt_sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    threads: usize,
) {
    let p = Product { m, k, n, a, rsa, csa, b, rsb, csb, c, rsc, csc };
    // SAFETY: forwarded from the caller. A panic stops at `guard` (see `pool`).
    crate::pool::guard(move || unsafe { product(p, threads, sgemm_one) })
}

/// `c[m×n] = a[m×k]·b[k×n]` in f64, strides in elements, on up to `threads` threads.
///
/// # Safety
/// As [`jjt_sgemm`].
pub(crate) unsafe extern "C" fn jjt_dgemm(
    m: usize,
    k: usize,
    n: usize,
    a: *const f64,
    rsa: isize,
    csa: isize,
    b: *const f64,
    rsb: isize,
    csb: isize,
    c: *mut f64,
    rsc: isize,
    csc: isize,
    threads: usize,
) {
    let p = Product { m, k, n, a, rsa, csa, b, rsb, csb, c, rsc, csc };
    // SAFETY: forwarded from the caller. A panic stops at `guard` (see `pool`).
    crate::pool::guard(move || unsafe { product(p, threads, dgemm_one) })
}

/// `p` with the library's routine `one` (split across up to `threads` threads), or with the
/// plain loop when a buffer is not aligned to its element type (only `call_raw` can pass such
/// buffers; the library needs aligned ones).
///
/// # Safety
/// As [`jjt_sgemm`].
unsafe fn product<T>(p: Product<T>, threads: usize, one: unsafe fn(Product<T>))
where
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T> + 'static,
{
    if !(p.a.is_aligned() && p.b.is_aligned() && p.c.is_aligned()) {
        // SAFETY: forwarded from the caller; the fallback reads and writes through unaligned
        // accesses only.
        unsafe { unaligned_gemm(p) };
        return;
    }
    // SAFETY: forwarded from the caller; the pointers are aligned (checked above).
    unsafe { run_split(p, threads, one) }
}

/// The product for buffers that are not aligned to their element type (only `call_raw` can
/// pass such buffers): a plain triple loop with unaligned loads and stores.
///
/// # Safety
/// As [`jjt_sgemm`], except that the pointers need not be aligned.
unsafe fn unaligned_gemm<
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T>,
>(
    p: Product<T>,
) {
    for i in 0..p.m as isize {
        for j in 0..p.n as isize {
            let mut acc = T::default();
            for q in 0..p.k as isize {
                // SAFETY: (i, q) and (q, j) are inside the ranges the caller guarantees.
                let (x, y) = unsafe {
                    (
                        p.a.offset(i * p.rsa + q * p.csa).read_unaligned(),
                        p.b.offset(q * p.rsb + j * p.csb).read_unaligned(),
                    )
                };
                acc = acc + x * y;
            }
            // SAFETY: (i, j) is inside the output range the caller guarantees.
            unsafe { p.c.offset(i * p.rsc + j * p.csc).write_unaligned(acc) };
        }
    }
}
