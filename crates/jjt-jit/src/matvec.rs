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
//! The kernel ([`jjt_matvec_f32`], [`jjt_matvec_f64`]) takes rows in blocks of at most
//! [`ROWS_ONE`] (one vector) or [`ROWS_TWO`] (two) and keeps, per row and vector, two
//! accumulators of one 64-byte vector of lanes (16 f32 or 8 f64), updated with fused
//! multiply-adds along K; the accumulators are added lane by lane, the tail's products
//! (K mod two vectors) added one per lane, and the lanes combined pairwise. The loop is
//! compiled for AVX-512, for AVX2 and for the baseline and the widest the host has runs: the
//! same operations in the same order (`mul_add` is one rounding on every target), so the same
//! bits; the arithmetic does not depend on how many vectors share the pass or on the row
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

/// Rows `r0..r0 + R` of `P` products: the accumulators described in the module's
/// documentation, in registers (the arrays have constant sizes and are fully unrolled).
///
/// # Safety
/// Rows `r0..r0 + R` of the matrix (`lda` apart, `k` elements each), every part's `k` vector
/// elements and its outputs `r0..r0 + R` are valid; outputs overlap no input.
#[inline(always)]
#[expect(
    clippy::needless_range_loop,
    reason = "each loop indexes several arrays in step (lanes, rows, parts), all unrolled"
)]
unsafe fn block<T: Fma, const L: usize, const R: usize, const P: usize>(
    a: *const T,
    lda: isize,
    k: usize,
    r0: usize,
    parts: [Part<T>; P],
) {
    let mut acc = [[[[T::default(); L]; 2]; R]; P];
    let step = 2 * L;
    let full = k / step * step;
    // SAFETY: the reads are of indices below `k` of rows `r0..r0 + R` and of the vectors, the
    // writes of outputs `r0..r0 + R`: all valid (caller).
    unsafe {
        let row = |r: usize| a.offset((r0 + r) as isize * lda);
        let mut j = 0;
        while j < full {
            for u in 0..2 {
                let mut xv = [[T::default(); L]; P];
                for p in 0..P {
                    for l in 0..L {
                        xv[p][l] = *parts[p].x.add(j + u * L + l);
                    }
                }
                for r in 0..R {
                    let mut av = [T::default(); L];
                    for l in 0..L {
                        av[l] = *row(r).add(j + u * L + l);
                    }
                    for p in 0..P {
                        for l in 0..L {
                            acc[p][r][u][l] = av[l].fma(xv[p][l], acc[p][r][u][l]);
                        }
                    }
                }
            }
            j += step;
        }
        for p in 0..P {
            for r in 0..R {
                let mut s = [T::default(); L];
                for l in 0..L {
                    s[l] = acc[p][r][0][l] + acc[p][r][1][l];
                }
                for (l, q) in (full..k).enumerate() {
                    s[l % L] = (*row(r).add(q)).fma(*parts[p].x.add(q), s[l % L]);
                }
                let mut w = L;
                while w > 1 {
                    w /= 2;
                    for l in 0..w {
                        s[l] = s[l] + s[l + w];
                    }
                }
                *parts[p].y.offset((r0 + r) as isize * parts[p].inc) = s[0];
            }
        }
    }
}

/// All rows of `P` products, in blocks of at most `RMAX` rows of near-equal sizes.
///
/// # Safety
/// As [`block`], for all `rows` rows.
#[inline(always)]
unsafe fn rows<T: Fma, const L: usize, const P: usize, const RMAX: usize>(
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
                1 => block::<T, L, 1, P>(a, lda, k, r0, parts),
                2 => block::<T, L, 2, P>(a, lda, k, r0, parts),
                3 => block::<T, L, 3, P>(a, lda, k, r0, parts),
                4 => block::<T, L, 4, P>(a, lda, k, r0, parts),
                5 => block::<T, L, 5, P>(a, lda, k, r0, parts),
                _ => block::<T, L, 6, P>(a, lda, k, r0, parts),
            }
        }
        r0 += n;
    }
}

/// One or two products (`second` the optional second one).
///
/// # Safety
/// As [`block`], for all rows and both parts.
#[inline(always)]
unsafe fn products<T: Fma, const L: usize>(
    a: *const T,
    lda: isize,
    n: usize,
    k: usize,
    first: Part<T>,
    second: Option<Part<T>>,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match second {
            None => rows::<T, L, 1, ROWS_ONE>(a, lda, n, k, [first]),
            Some(s) => rows::<T, L, 2, ROWS_TWO>(a, lda, n, k, [first, s]),
        }
    }
}

/// [`products`] compiled for AVX-512 (with FMA).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn products_avx512<T: Fma, const L: usize>(
    a: *const T,
    lda: isize,
    n: usize,
    k: usize,
    first: Part<T>,
    second: Option<Part<T>>,
) {
    // SAFETY: forwarded from the caller.
    unsafe { products::<T, L>(a, lda, n, k, first, second) }
}

/// [`products`] compiled for AVX2 (with FMA).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn products_avx2<T: Fma, const L: usize>(
    a: *const T,
    lda: isize,
    n: usize,
    k: usize,
    first: Part<T>,
    second: Option<Part<T>>,
) {
    // SAFETY: forwarded from the caller.
    unsafe { products::<T, L>(a, lda, n, k, first, second) }
}

/// [`products`] on the widest instruction set the host has.
///
/// # Safety
/// As [`block`], for all rows and both parts.
unsafe fn dispatch<T: Fma, const L: usize>(
    a: *const T,
    lda: isize,
    n: usize,
    k: usize,
    first: Part<T>,
    second: Option<Part<T>>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the host has AVX-512 F and FMA (checked just above); the rest is
            // forwarded from the caller.
            return unsafe { products_avx512::<T, L>(a, lda, n, k, first, second) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the host has AVX2 and FMA (checked just above); the rest as above.
            return unsafe { products_avx2::<T, L>(a, lda, n, k, first, second) };
        }
    }
    // SAFETY: forwarded from the caller.
    unsafe { products::<T, L>(a, lda, n, k, first, second) }
}

/// The kernel for the generated code: `rows` outputs of `parts` (1 or 2) products of the
/// matrix at `a` (rows `lda` apart, `k` contiguous elements each) with the vectors `x0`, `x1`
/// into `y0`, `y1` (outputs `inc0`, `inc1` apart; `x1`, `y1` unused with one part).
///
/// # Safety
/// The generated code passes pointers into live buffers that hold every element the sizes and
/// strides address (the plan's views), outputs not overlapping inputs.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe extern "C" fn jjt_matvec_f32(
    a: *const f32,
    lda: i64,
    rows: i64,
    k: i64,
    parts: i64,
    x0: *const f32,
    y0: *mut f32,
    inc0: i64,
    x1: *const f32,
    y1: *mut f32,
    inc1: i64,
) {
    let first = Part { x: x0, y: y0, inc: inc0 as isize };
    let second = (parts == 2).then_some(Part { x: x1, y: y1, inc: inc1 as isize });
    // SAFETY: forwarded from the generated code (see above).
    unsafe { dispatch::<f32, 16>(a, lda as isize, rows as usize, k as usize, first, second) }
}

/// [`jjt_matvec_f32`] for f64.
///
/// # Safety
/// As [`jjt_matvec_f32`].
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe extern "C" fn jjt_matvec_f64(
    a: *const f64,
    lda: i64,
    rows: i64,
    k: i64,
    parts: i64,
    x0: *const f64,
    y0: *mut f64,
    inc0: i64,
    x1: *const f64,
    y1: *mut f64,
    inc1: i64,
) {
    let first = Part { x: x0, y: y0, inc: inc0 as isize };
    let second = (parts == 2).then_some(Part { x: x1, y: y1, inc: inc1 as isize });
    // SAFETY: forwarded from the generated code (see above).
    unsafe { dispatch::<f64, 8>(a, lda as isize, rows as usize, k as usize, first, second) }
}

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

    /// The instruction-set versions give the same bits as the baseline loop.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let (rows, k) = (7, 1001);
        let a = values(rows * k, 4);
        let x = values(k, 5);
        type Products = unsafe fn(*const f64, isize, usize, usize, Part<f64>, Option<Part<f64>>);
        let run = |f: Products| {
            let mut y = vec![0f64; rows];
            let p = Part { x: x.as_ptr(), y: y.as_mut_ptr(), inc: 1 };
            // SAFETY: rows·k matrix elements, k vector elements, rows outputs.
            unsafe { f(a.as_ptr(), k as isize, rows, k, p, None) };
            y
        };
        let base = run(products::<f64, 8>);
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            assert_eq!(run(products_avx2::<f64, 8>), base);
        }
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("fma")
        {
            assert_eq!(run(products_avx512::<f64, 8>), base);
        }
    }
}
