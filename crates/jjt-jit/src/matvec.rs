//! Matrix–vector products that share their matrix, in one pass over it.
//!
//! A kernel evaluates the model at both sides' points with the same parameters, so a product of
//! a weight matrix with a vector appears once per side: on the seed, `A·x₁` and `A·x₂` with
//! the 5×10000 constant `A`. Each is bound by reading `A` (from L2: 200 KB per product), so
//! computing both in one pass halves the traffic; and the generated code's 128-bit vectors
//! issue four times the loads of 512-bit ones, so even one product runs faster here.
//!
//! [`join`] is a plan pass (outside strict mode): every [`DotStep`] that is a matrix–vector
//! product ([`MatVec::of`]: one output axis, one contracted axis along which both operands are
//! contiguous, the vector constant along the output) becomes a [`Step::MatVecs`]; a later one
//! with the same matrix view joins an earlier one when moving it up past the steps between
//! changes no value (it reads nothing they write and writes nothing they touch).
//!
//! The kernel (`jjt_matvec_f32`, `jjt_matvec_f64`) takes rows in blocks of at most
//! [`ROWS_ONE`] (one vector) or [`ROWS_TWO`] (two) and keeps, per row and vector, two
//! accumulators of one 64-byte vector of lanes (16 f32 or 8 f64), updated with fused
//! multiply-adds along K; the accumulators are added lane by lane, the tail's products
//! (K mod two vectors) added one per lane, and the lanes combined pairwise. On AVX-512 the
//! accumulators are registers (intrinsics, `Chunks`); elsewhere a portable loop, compiled for
//! AVX2 and for the baseline, does the same operations lane by lane in the same order
//! (`mul_add` is one rounding on every target), so every host gets the same bits; the arithmetic does not depend on how many vectors share the pass or on the row
//! blocks, so a product has the same bits joined or alone. Each output is a sum of 2·L chains
//! of at most ⌈K / 2L⌉ terms combined pairwise: the error is at most
//! `(⌈K/2L⌉ + log2(2L) + 1)·u·Σ|aᵢ·xᵢ|`, and [`MatVec::of`] takes only `K ≤ 2L·INLINE_MAX_K`
//! (the bound of the inline forms).

use std::ops::Add;

use jjt_ir::DType;

use crate::plan::{Buf, DotStep, Plan, Step, View};

/// Rows per block with one vector: two accumulators per row, 12 of the 32 vector registers.
pub const ROWS_ONE: usize = 6;

/// Rows per block with two vectors: 20 accumulators, two vectors' loads and one row's.
pub const ROWS_TWO: usize = 5;

/// The fewest matrix elements for which a product takes the kernel (below, the generated
/// code's inline loops cost less than the call).
pub const MIN_ELEMS: usize = 1 << 12;

/// Bytes of the kernel's vectors (the accumulators' lanes: 16 f32, 8 f64).
const VECTOR_BYTES: usize = 64;

/// Lanes of one accumulator for `dtype`.
pub(crate) fn lanes(dtype: DType) -> usize {
    VECTOR_BYTES / crate::plan::item_size(dtype)
}

/// One matrix–vector product: `dst[i·inc] = Σₖ matrix[i·lda + k]·vector[k]`, i < rows, k < k.
#[derive(Clone, Debug, PartialEq)]
pub struct MatVec {
    /// The matrix's first element (its strides are not used: `lda` and 1).
    pub matrix: View,
    /// Elements between the matrix's rows.
    pub lda: isize,
    /// Rows (outputs).
    pub rows: usize,
    /// Length of the contraction.
    pub k: usize,
    /// The vector's first element (contiguous).
    pub vector: View,
    /// The first output.
    pub dst: View,
    /// Elements between outputs.
    pub inc: isize,
}

impl MatVec {
    /// `s` as a matrix–vector product, when it is one the kernel takes: a float `dot_general`
    /// with no batch axes, one contracted axis and one output axis, the contracted axis
    /// contiguous in both operands, the vector operand of rank 1, at least [`MIN_ELEMS`]
    /// matrix elements and at most `2L·INLINE_MAX_K` terms per output.
    pub fn of(s: &DotStep) -> Option<MatVec> {
        let d = &s.dims;
        let dtype = s.dst.dtype;
        if !matches!(dtype, DType::F32 | DType::F64)
            || !d.lhs_batch.is_empty()
            || d.lhs_contract.len() != 1
            || s.shape.len() != 1
        {
            return None;
        }
        // The matrix is the operand of rank 2, the vector the one of rank 1.
        let (m, ms, mc, v, vc) = match (s.lhs_shape.len(), s.rhs_shape.len()) {
            (2, 1) => (&s.lhs, &s.lhs_shape, d.lhs_contract[0], &s.rhs, d.rhs_contract[0]),
            (1, 2) => (&s.rhs, &s.rhs_shape, d.rhs_contract[0], &s.lhs, d.lhs_contract[0]),
            _ => return None,
        };
        let (rows, k) = (ms[1 - mc], ms[mc]);
        let lda = m.strides[1 - mc];
        let max_k = 2 * lanes(dtype) * crate::codegen::INLINE_MAX_K;
        let ok = m.strides[mc] == 1
            && v.strides[vc] == 1
            && lda != 0
            && s.dst.strides[0] != 0
            && k >= 2 * lanes(dtype)
            && k <= max_k
            && rows.saturating_mul(k) >= MIN_ELEMS;
        ok.then(|| MatVec {
            matrix: View { strides: Vec::new(), ..m.clone() },
            lda,
            rows,
            k,
            vector: View { strides: Vec::new(), ..v.clone() },
            dst: View { strides: Vec::new(), ..s.dst.clone() },
            inc: s.dst.strides[0],
        })
    }

    /// Whether `other` reads the same matrix the same way (and so can share the pass).
    fn shares_matrix(&self, other: &MatVec) -> bool {
        self.matrix == other.matrix
            && self.lda == other.lda
            && self.rows == other.rows
            && self.k == other.k
    }

    /// The multiply-adds.
    pub fn macs(&self) -> usize {
        self.rows * self.k
    }
}

/// Matrix–vector products over one matrix, computed in one pass over it (1 or 2 of them, all
/// with the same matrix, rows and K).
#[derive(Clone, Debug, PartialEq)]
pub struct MatVecStep {
    /// The products.
    pub parts: Vec<MatVec>,
}

impl MatVecStep {
    /// The buffers the step writes.
    pub fn writes(&self) -> Vec<View> {
        self.parts.iter().map(|p| p.dst.clone()).collect()
    }

    /// The buffers the step reads.
    pub fn reads(&self) -> Vec<View> {
        self.parts.iter().flat_map(|p| [p.matrix.clone(), p.vector.clone()]).collect()
    }
}

/// The largest number of products one pass computes.
pub const MAX_PARTS: usize = 2;

/// Turn the matrix–vector products of `plan` into [`Step::MatVecs`] and join those sharing a
/// matrix, two at a time (see the module's documentation). Keeps `plan.step_nodes` parallel to
/// `plan.steps` (a joined step keeps its first product's node).
pub fn join(plan: &mut Plan) {
    for s in &mut plan.steps {
        if let Step::Dot(d) = s
            && let Some(mv) = MatVec::of(d)
        {
            *s = Step::MatVecs(MatVecStep { parts: vec![mv] });
        }
    }
    let mut i = 0;
    while i < plan.steps.len() {
        if let Some(j) = partner(&plan.steps, i) {
            let Step::MatVecs(later) = plan.steps.remove(j) else { unreachable!() };
            plan.step_nodes.remove(j);
            if let Step::MatVecs(first) = &mut plan.steps[i] {
                first.parts.extend(later.parts);
            }
        }
        i += 1;
    }
}

/// The first step after `i` that can join step `i`: a single product with the same matrix that
/// can move up to `i` (it reads no buffer that step `i` or a step between writes, and its
/// destination is no buffer that they read or write).
fn partner(steps: &[Step], i: usize) -> Option<usize> {
    let Step::MatVecs(first) = &steps[i] else { return None };
    if first.parts.len() >= MAX_PARTS {
        return None;
    }
    let bufs = |vs: Vec<View>| vs.into_iter().map(|v| v.buf).collect::<Vec<Buf>>();
    for j in i + 1..steps.len() {
        let Step::MatVecs(later) = &steps[j] else { continue };
        let [p] = &later.parts[..] else { continue };
        if !first.parts[0].shares_matrix(p) {
            continue;
        }
        let reads = bufs(later.reads());
        let dst = p.dst.buf;
        let free = steps[i..j].iter().all(|s| {
            let (w, r) = (bufs(s.writes()), bufs(s.reads()));
            !w.iter().any(|b| reads.contains(b) || *b == dst) && !r.contains(&dst)
        });
        if free {
            return Some(j);
        }
    }
    None
}

/// Fused multiply-add with one rounding, on every target.
trait Fma: Copy + Default + Add<Output = Self> {
    fn fma(self, b: Self, c: Self) -> Self;
}

impl Fma for f32 {
    #[inline(always)]
    fn fma(self, b: f32, c: f32) -> f32 {
        self.mul_add(b, c)
    }
}

impl Fma for f64 {
    #[inline(always)]
    fn fma(self, b: f64, c: f64) -> f64 {
        self.mul_add(b, c)
    }
}

/// One product's pointers: the vector and the first output, outputs `inc` apart.
#[derive(Clone, Copy)]
struct Part<T> {
    x: *const T,
    y: *mut T,
    inc: isize,
}

/// Rows `r0..` of the matrix at `a` (`lda` apart) against `P` vectors, over their first `full`
/// elements.
#[derive(Clone, Copy)]
struct Strip<T, const P: usize> {
    a: *const T,
    lda: isize,
    r0: usize,
    full: usize,
    parts: [Part<T>; P],
}

/// The accumulators of rows `r0..r0 + R` of `P` products over the first `full` elements (a
/// multiple of `2L`): `acc[p][r][u][l]`, the fused multiply-adds of the elements
/// `j + u·L + l`, `j` in steps of `2L`, in increasing order of `j`.
trait Chunks<T, const L: usize> {
    /// # Safety
    /// Rows `r0..r0 + R` of the matrix (`lda` apart) and every part's vector hold `full`
    /// elements; the host has the instruction set the implementation names.
    unsafe fn chunks<const R: usize, const P: usize>(b: Strip<T, P>) -> [[[[T; L]; 2]; R]; P];
}

/// [`Chunks`] in plain Rust (any host; the compiler vectorises it as it can).
struct Portable;

impl<T: Fma, const L: usize> Chunks<T, L> for Portable {
    #[inline(always)]
    #[expect(
        clippy::needless_range_loop,
        reason = "each loop indexes several arrays in step (lanes, rows, parts), all unrolled"
    )]
    unsafe fn chunks<const R: usize, const P: usize>(b: Strip<T, P>) -> [[[[T; L]; 2]; R]; P] {
        let Strip { a, lda, r0, full, parts } = b;
        let mut acc = [[[[T::default(); L]; 2]; R]; P];
        let mut j = 0;
        // SAFETY: indices below `full` of rows `r0..r0 + R` and of the vectors (caller).
        unsafe {
            while j < full {
                for u in 0..2 {
                    let mut xv = [[T::default(); L]; P];
                    for p in 0..P {
                        for l in 0..L {
                            xv[p][l] = *parts[p].x.add(j + u * L + l);
                        }
                    }
                    for r in 0..R {
                        let row = a.offset((r0 + r) as isize * lda).add(j + u * L);
                        let mut av = [T::default(); L];
                        for l in 0..L {
                            av[l] = *row.add(l);
                        }
                        for p in 0..P {
                            for l in 0..L {
                                acc[p][r][u][l] = av[l].fma(xv[p][l], acc[p][r][u][l]);
                            }
                        }
                    }
                }
                j += 2 * L;
            }
        }
        acc
    }
}

/// [`Chunks`] with AVX-512 registers as the accumulators (the portable loop, left to the
/// compiler, spilled some of them to the stack, and its time then varied twofold from one
/// process to the next with the stack's address): the same operations lane by lane, so the
/// same bits.
struct Avx512;

/// Elsewhere than x86-64 (where it is never dispatched to) the portable loop.
#[cfg(not(target_arch = "x86_64"))]
impl<T: Fma, const L: usize> Chunks<T, L> for Avx512 {
    #[inline(always)]
    unsafe fn chunks<const R: usize, const P: usize>(b: Strip<T, P>) -> [[[[T; L]; 2]; R]; P] {
        // SAFETY: forwarded from the caller.
        unsafe { <Portable as Chunks<T, L>>::chunks::<R, P>(b) }
    }
}

/// The AVX-512 [`Chunks`] for one element type: its vector type, lanes and intrinsics.
#[cfg(target_arch = "x86_64")]
macro_rules! avx512_chunks {
    ($t:ty, $l:literal, $zero:ident, $load:ident, $fma:ident, $store:ident) => {
        impl Chunks<$t, $l> for Avx512 {
            #[inline]
            #[target_feature(enable = "avx512f,fma")]
            unsafe fn chunks<const R: usize, const P: usize>(
                b: Strip<$t, P>,
            ) -> [[[[$t; $l]; 2]; R]; P] {
                use std::arch::x86_64::*;
                let Strip { a, lda, r0, full, parts } = b;
                let mut acc = [[[$zero(); 2]; R]; P];
                let mut j = 0;
                // SAFETY: indices below `full` of rows `r0..r0 + R` and of the vectors
                // (caller); unaligned loads.
                unsafe {
                    while j < full {
                        for u in 0..2 {
                            let mut xv = [$zero(); P];
                            for (p, x) in xv.iter_mut().enumerate() {
                                *x = $load(parts[p].x.add(j + u * $l));
                            }
                            for r in 0..R {
                                let row = a.offset((r0 + r) as isize * lda).add(j + u * $l);
                                let av = $load(row);
                                for (p, x) in xv.iter().enumerate() {
                                    acc[p][r][u] = $fma(av, *x, acc[p][r][u]);
                                }
                            }
                        }
                        j += 2 * $l;
                    }
                }
                let mut out = [[[[0.0; $l]; 2]; R]; P];
                for (o, v) in out.iter_mut().zip(&acc) {
                    for (o, v) in o.iter_mut().zip(v) {
                        for (o, v) in o.iter_mut().zip(v) {
                            // SAFETY: `o` holds one vector's lanes.
                            unsafe { $store(o.as_mut_ptr(), *v) };
                        }
                    }
                }
                out
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
avx512_chunks!(f32, 16, _mm512_setzero_ps, _mm512_loadu_ps, _mm512_fmadd_ps, _mm512_storeu_ps);
#[cfg(target_arch = "x86_64")]
avx512_chunks!(f64, 8, _mm512_setzero_pd, _mm512_loadu_pd, _mm512_fmadd_pd, _mm512_storeu_pd);

/// Rows `r0..r0 + R` of `P` products: [`Chunks`] over the full chunks, then per row and
/// vector the two accumulators added lane by lane, the tail's products added one per lane,
/// and the lanes combined pairwise.
///
/// # Safety
/// Rows `r0..r0 + R` of the matrix (`lda` apart, `k` elements each), every part's `k` vector
/// elements and its outputs `r0..r0 + R` are valid; outputs overlap no input; the host has
/// `C`'s instruction set.
#[inline(always)]
unsafe fn block<T: Fma, const L: usize, C: Chunks<T, L>, const R: usize, const P: usize>(
    a: *const T,
    lda: isize,
    k: usize,
    r0: usize,
    parts: [Part<T>; P],
) {
    let full = k / (2 * L) * (2 * L);
    // SAFETY: forwarded from the caller.
    let acc = unsafe { C::chunks::<R, P>(Strip { a, lda, r0, full, parts }) };
    for (part, acc) in parts.iter().zip(&acc) {
        for (r, [a0, a1]) in acc.iter().enumerate() {
            let mut s = [T::default(); L];
            for ((s, &x), &y) in s.iter_mut().zip(a0).zip(a1) {
                *s = x + y;
            }
            // SAFETY: the tail's indices are below `k` (row r0 + r, the vector), and output
            // r0 + r is valid (caller).
            unsafe {
                let row = a.offset((r0 + r) as isize * lda);
                for (l, q) in (full..k).enumerate() {
                    s[l % L] = (*row.add(q)).fma(*part.x.add(q), s[l % L]);
                }
                let mut w = L;
                while w > 1 {
                    w /= 2;
                    for l in 0..w {
                        s[l] = s[l] + s[l + w];
                    }
                }
                *part.y.offset((r0 + r) as isize * part.inc) = s[0];
            }
        }
    }
}

/// All rows of `P` products, in blocks of at most `RMAX` rows of near-equal sizes.
///
/// # Safety
/// As [`block`], for all `rows` rows.
#[inline(always)]
unsafe fn rows<T: Fma, const L: usize, C: Chunks<T, L>, const P: usize, const RMAX: usize>(
    a: *const T,
    lda: isize,
    rows: usize,
    k: usize,
    parts: [Part<T>; P],
) {
    let blocks = rows.div_ceil(RMAX);
    let mut r0 = 0;
    for b in 0..blocks {
        let n = rows / blocks + usize::from(b < rows % blocks);
        // SAFETY: rows r0..r0 + n are below `rows` (forwarded from the caller).
        unsafe {
            match n {
                1 => block::<T, L, C, 1, P>(a, lda, k, r0, parts),
                2 => block::<T, L, C, 2, P>(a, lda, k, r0, parts),
                3 => block::<T, L, C, 3, P>(a, lda, k, r0, parts),
                4 => block::<T, L, C, 4, P>(a, lda, k, r0, parts),
                5 => block::<T, L, C, 5, P>(a, lda, k, r0, parts),
                _ => block::<T, L, C, 6, P>(a, lda, k, r0, parts),
            }
        }
        r0 += n;
    }
}

/// One call's work: `rows` rows of the matrix at `a` (`lda` apart, `k` elements each) against
/// one or two vectors.
#[derive(Clone, Copy)]
struct Job<T> {
    a: *const T,
    lda: isize,
    rows: usize,
    k: usize,
    first: Part<T>,
    second: Option<Part<T>>,
}

/// Every product of `job`.
///
/// # Safety
/// As [`block`], for all rows and both parts.
#[inline(always)]
unsafe fn products<T: Fma, const L: usize, C: Chunks<T, L>>(job: Job<T>) {
    let Job { a, lda, rows: n, k, first, second } = job;
    // SAFETY: forwarded from the caller.
    unsafe {
        match second {
            None => rows::<T, L, C, 1, ROWS_ONE>(a, lda, n, k, [first]),
            Some(s) => rows::<T, L, C, 2, ROWS_TWO>(a, lda, n, k, [first, s]),
        }
    }
}

/// [`products`] compiled for AVX-512 (with FMA), its accumulators in AVX-512 registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn products_avx512<T: Fma, const L: usize>(job: Job<T>)
where
    Avx512: Chunks<T, L>,
{
    // SAFETY: forwarded from the caller.
    unsafe { products::<T, L, Avx512>(job) }
}

/// [`products`] compiled for AVX2 (with FMA).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn products_avx2<T: Fma, const L: usize>(job: Job<T>) {
    // SAFETY: forwarded from the caller.
    unsafe { products::<T, L, Portable>(job) }
}

/// [`products`] on the widest instruction set the host has.
///
/// # Safety
/// As [`block`], for all rows and both parts.
unsafe fn dispatch<T: Fma, const L: usize>(job: Job<T>)
where
    Avx512: Chunks<T, L>,
{
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the host has AVX-512 F and FMA (checked just above); the rest is
            // forwarded from the caller.
            return unsafe { products_avx512::<T, L>(job) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the host has AVX2 and FMA (checked just above); the rest as above.
            return unsafe { products_avx2::<T, L>(job) };
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { products::<T, L, Portable>(job) }
}

/// The kernel's entry point for the generated code, per element type.
macro_rules! entry {
    ($(#[$doc:meta])* $name:ident, $t:ty, $l:literal) => {
        $(#[$doc])*
        /// # Safety
        /// The generated code passes pointers into live buffers that hold every element the
        /// sizes and strides address (the plan's views), outputs not overlapping inputs.
        #[allow(clippy::too_many_arguments)]
        pub(crate) unsafe extern "C" fn $name(
            a: *const $t,
            lda: i64,
            rows: i64,
            k: i64,
            parts: i64,
            x0: *const $t,
            y0: *mut $t,
            inc0: i64,
            x1: *const $t,
            y1: *mut $t,
            inc1: i64,
        ) {
            let first = Part { x: x0, y: y0, inc: inc0 as isize };
            let second = (parts == 2).then_some(Part { x: x1, y: y1, inc: inc1 as isize });
            let job = Job { a, lda: lda as isize, rows: rows as usize, k: k as usize, first, second };
            // SAFETY: forwarded from the generated code (see above).
            unsafe { dispatch::<$t, $l>(job) }
        }
    };
}

entry!(
    /// The kernel for the generated code: `rows` outputs of `parts` (1 or 2) products of the
    /// matrix at `a` (rows `lda` apart, `k` contiguous elements each) with the vectors `x0`,
    /// `x1` into `y0`, `y1` (outputs `inc0`, `inc1` apart; `x1`, `y1` unused with one part).
    ///
    jjt_matvec_f32, f32, 16
);
entry!(
    /// [`jjt_matvec_f32`] for f64.
    ///
    jjt_matvec_f64, f64, 8
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
            })
            .collect()
    }

    /// Every row count up to three blocks, K with and without a tail, one and two vectors,
    /// a negative row stride: each output within the bound of the module's documentation of
    /// the f64 sum of its products, and the same bits alone as joined.
    #[test]
    fn products_are_within_the_bound_and_the_same_joined_or_alone() {
        let u = f64::from(f32::EPSILON) / 2.0;
        for rows in [1, 2, 5, 6, 7, 11, 16] {
            for k in [32, 33, 63, 100, 1000] {
                let a: Vec<f32> = values(rows * k, 1).iter().map(|&v| v as f32).collect();
                let x: Vec<f32> = values(k, 2).iter().map(|&v| v as f32).collect();
                let x2: Vec<f32> = values(k, 3).iter().map(|&v| v as f32).collect();
                let (mut y, mut y2, mut alone) =
                    (vec![0f32; 2 * rows], vec![0f32; rows], vec![0f32; rows]);
                // Rows in reverse order: the last row first, lda = -k.
                let last = a[(rows - 1) * k..].as_ptr();
                let lda = -(k as i64);
                // SAFETY: every row and vector holds k elements; y has 2·rows slots (inc 2).
                unsafe {
                    jjt_matvec_f32(
                        last,
                        lda,
                        rows as i64,
                        k as i64,
                        2,
                        x.as_ptr(),
                        y.as_mut_ptr(),
                        2,
                        x2.as_ptr(),
                        y2.as_mut_ptr(),
                        1,
                    );
                    jjt_matvec_f32(
                        last,
                        lda,
                        rows as i64,
                        k as i64,
                        1,
                        x2.as_ptr(),
                        alone.as_mut_ptr(),
                        1,
                        std::ptr::null(),
                        std::ptr::null_mut(),
                        0,
                    );
                }
                let bound = (k.div_ceil(32) + 6) as f64 * u;
                for r in 0..rows {
                    let row = &a[(rows - 1 - r) * k..(rows - r) * k];
                    for (got, v) in [(y[2 * r], &x), (y2[r], &x2)] {
                        let exact: f64 = row
                            .iter()
                            .zip(v.iter())
                            .map(|(&p, &q)| f64::from(p) * f64::from(q))
                            .sum();
                        let mag: f64 = row
                            .iter()
                            .zip(v.iter())
                            .map(|(&p, &q)| (f64::from(p) * f64::from(q)).abs())
                            .sum();
                        assert!(
                            (f64::from(got) - exact).abs() <= bound * mag,
                            "rows {rows} k {k} row {r}: {got} vs {exact}"
                        );
                    }
                    assert_eq!(y2[r].to_bits(), alone[r].to_bits(), "rows {rows} k {k} row {r}");
                }
            }
        }
    }

    /// The instruction-set versions give the same bits as the portable loop, in f32 and f64,
    /// with one vector and with two (7 rows: blocks of 4 and 3, or 4 and 3; K with a tail).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        fn check<T: Fma + PartialEq + std::fmt::Debug, const L: usize>(from: fn(f64) -> T)
        where
            Avx512: Chunks<T, L>,
        {
            type Run<T> = unsafe fn(Job<T>);
            let (rows, k) = (7, 1001);
            let a: Vec<T> = values(rows * k, 4).into_iter().map(from).collect();
            let x: Vec<T> = values(k, 5).into_iter().map(from).collect();
            let x2: Vec<T> = values(k, 6).into_iter().map(from).collect();
            let run = |f: Run<T>, two: bool| {
                let (mut y, mut y2) = (vec![T::default(); rows], vec![T::default(); rows]);
                let p = Part { x: x.as_ptr(), y: y.as_mut_ptr(), inc: 1 };
                let q = two.then_some(Part { x: x2.as_ptr(), y: y2.as_mut_ptr(), inc: 1 });
                let job = Job { a: a.as_ptr(), lda: k as isize, rows, k, first: p, second: q };
                // SAFETY: rows·k matrix elements, k elements per vector, rows outputs each.
                unsafe { f(job) };
                (y, y2)
            };
            let has = |f: &str| {
                std::arch::is_x86_feature_detected!("fma")
                    && match f {
                        "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
                        _ => std::arch::is_x86_feature_detected!("avx2"),
                    }
            };
            for two in [false, true] {
                let base = run(products::<T, L, Portable>, two);
                if has("avx2") {
                    assert_eq!(run(products_avx2::<T, L>, two), base);
                }
                if has("avx512f") {
                    assert_eq!(run(products_avx512::<T, L>, two), base);
                }
            }
        }
        check::<f32, 16>(|v| v as f32);
        check::<f64, 8>(|v| v);
    }
}
