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

/// `c[m×n] = a[m×k]·b[k×n]` in f32, strides in elements.
///
/// # Safety
/// The pointers must be valid for every element the dimensions and strides address, and `c`
/// must not overlap `a` or `b`.
#[allow(clippy::too_many_arguments)]
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
) {
    if !(a.is_aligned() && b.is_aligned() && c.is_aligned()) {
        // SAFETY: as below; the fallback reads and writes through unaligned accesses only.
        unsafe { unaligned_gemm(m, k, n, a, rsa, csa, b, rsb, csb, c, rsc, csc) };
        return;
    }
    // SAFETY: the caller (generated code) guarantees the pointers cover the strided ranges and
    // that `c` is a distinct buffer; they are aligned (checked above), as matrixmultiply needs.
    unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, csc) }
}

/// `c[m×n] = a[m×k]·b[k×n]` in f64, strides in elements.
///
/// # Safety
/// As [`jjt_sgemm`].
#[allow(clippy::too_many_arguments)]
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
) {
    if !(a.is_aligned() && b.is_aligned() && c.is_aligned()) {
        // SAFETY: as in `jjt_sgemm`.
        unsafe { unaligned_gemm(m, k, n, a, rsa, csa, b, rsb, csb, c, rsc, csc) };
        return;
    }
    // SAFETY: as in `jjt_sgemm`.
    unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, csc) }
}

/// The product for buffers that are not aligned to their element type (only `call_raw` can
/// pass such buffers): a plain triple loop with unaligned loads and stores.
///
/// # Safety
/// As [`jjt_sgemm`], except that the pointers need not be aligned.
#[allow(clippy::too_many_arguments)]
unsafe fn unaligned_gemm<
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T>,
>(
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
) {
    for i in 0..m as isize {
        for j in 0..n as isize {
            let mut acc = T::default();
            for p in 0..k as isize {
                // SAFETY: (i, p) and (p, j) are inside the ranges the caller guarantees.
                let (x, y) = unsafe {
                    (
                        a.offset(i * rsa + p * csa).read_unaligned(),
                        b.offset(p * rsb + j * csb).read_unaligned(),
                    )
                };
                acc = acc + x * y;
            }
            // SAFETY: (i, j) is inside the output range the caller guarantees.
            unsafe { c.offset(i * rsc + j * csc).write_unaligned(acc) };
        }
    }
}
