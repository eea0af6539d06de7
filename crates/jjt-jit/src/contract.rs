//! The runtime contraction: any `dot_general` (batch axes, several contracted axes, any
//! strides, broadcast operands) as a sequence of matrix products, called by the generated code
//! through one symbol per precision (`jjt_contract_f32`, `jjt_contract_f64`).
//!
//! **The descriptor.** At compile time [`Descriptor::plan`] brings a [`DotStep`] to a canonical
//! form: *outer* loops (batch axes, free axes that do not chain in the output, free axes along
//! which their operand is broadcast, and free axes that would force a packing copy, see
//! [`Descriptor::plan`]), *M* axes (lhs free), *N* axes (rhs free) and *K* axes
//! (contracted), each with its extent and its strides in A (lhs), B (rhs) and C (the output).
//! Axes of extent 1 are dropped. The descriptor is owned by the compiled handle, so it lives as
//! long as the code that passes its address; the code passes it with the operands' base
//! addresses (already offset) and the thread count.
//!
//! Every stride is known at compile time, so every choice below except the alignment check is
//! made once, in the plan, not on each call.
//!
//! **K order and packing.** The contracted axes may be summed in any order (fast mode). Two
//! orders are candidates: A's K axes by descending stride (A's K chains if it can) and B's. An
//! operand whose free axes or K axes do not collapse to one stride each is **packed**; an
//! operand packed in the other operand's order is read against its own strides (short runs,
//! pages far apart: on the transformer NTK step this made packing 3× slower), so its elements
//! count twice, and the order with the smaller count is taken. Packing copies, for each block
//! of K (below), the operand's rows into contiguous scratch, K innermost, rows `ld` elements
//! apart (`ld` an odd number of cache lines, so reads down a column of packed rows do not
//! all hit one cache set), in chunks of at most [`PACK_ELEMS`] elements (2 MiB of f32, each
//! chunk one call of the matrix multiply), walking the source in the order of its strides (rows and K together when
//! they form a box). An A whose smallest stride runs along its rows (a convolution's
//! cotangent in channels-last layout, rows = (output, channel)) is packed K-outer instead —
//! rows contiguous, one index of K after another — when the product is one the tile kernel
//! computes anyway (`gemm::uses_dot_planned` false): the copy then runs along memory on both sides
//! rather than transposing (the CNN's first-layer Jacobian step: 4.1 → 3.1 ms). An f32 A that
//! would be packed K-inner against a B at most two tiles wide (a product the tile kernel
//! computes reading A in place) is not copied at all: the kernel reads it where it lies
//! through a table of its rows' offsets and one of its K indices' ([`crate::gemm::sgemm_gathered`],
//! the same chains of fused multiply-adds, so the same bits; a convolution's patches, whose
//! window rows lie one image row apart, against its 32 or 64 output channels: the CNN's
//! backward products through its convolutions 6.45 → 5.1 ms and 2.8 → 2.4 ms, the call about
//! 6 % faster in alternating runs). A copy is
//! O(size) against the product's O(M·N·K); a broadcast axis
//! (stride 0) of a batch or outer loop is never copied, and a free axis along which its
//! operand is broadcast becomes an outer loop, so the copies never materialise a broadcast.
//!
//! **Blocks of K and accuracy.** K is cut into blocks of at most [`KB`] elements, each a box of
//! the K index space (leading axes fixed, one axis in a range, trailing axes whole). Each
//! block's product is computed into a partial, and the partials of blocks `lo..hi` combine as
//! `S(lo..hi) = S(lo..lo+p) + S(lo+p..hi)` with `p` the largest power of two below `hi − lo`
//! (the combination rule of the reference summation order in `docs/format.md`, with this
//! module's own blocks). The error of a sum of K products is then at most about
//! `(KB + ⌈log2(K/KB)⌉)·u·Σ|a·b|` instead of growing with K. The blocks depend on the shapes
//! and strides only, never on the thread count.
//!
//! **Leaves.** A block's product runs in the matrix multiply ([`crate::gemm`]) when the descriptor says so (the
//! matrix multiply allowed, M·N·K per product at least [`GEMM_THRESHOLD`] — or at least
//! [`BATCHED_GEMM_MIN`] with [`BATCHED_GEMM_TOTAL`] over all products —, and M and N at least
//! [`GEMM_MIN_MN`] or the dot loops would have to pack an operand the matrix multiply reads in
//! place) and every buffer is aligned to its element type; otherwise in this module's own
//! loops: dot products of K-contiguous rows (operands packed when they are not), 16
//! independent lanes that the compiler vectorises, combined pairwise (matrix–vector, tiny and
//! misaligned products).
//!
//! **Shared panels.** Each call has a number ([`crate::gemm::new_call`]); a product whose
//! operands are both read in place passes it to the matrix multiply with how many consecutive
//! products share its A or its B (the innermost outer loop, when one operand does not move
//! along it), so the tile kernel packs a narrow B once for all of them and weighs its
//! orientation by that ([`crate::gemm::Sharing`]): the CNN's first-layer kernel gradient, 160
//! products of a cotangent's rows against each example's patches, 1.71 → 1.21 ms alone
//! (`jjt bench --profile` of that step as a model of its own, two threads). This module's own
//! packed blocks are rewritten at the same addresses from product to product, so a product
//! that reads one shares nothing.
//!
//! **Threads.** Work is split only above [`PAR_THRESHOLD`] multiply-adds, by
//! [`crate::pool::share`] and [`crate::pool::join`]: products (outer indices) across threads
//! first (in contiguous pieces the threads claim as they go, when there are at least two per
//! thread; else in halves, each with its share of the threads); a single product by
//! cutting the longer of M and N (rows in multiples of [`PAR_GRAIN_ROWS`], columns of
//! [`PAR_GRAIN`]), or by computing the two halves of its top pairwise combination of K's
//! blocks on two threads, whichever leaves the slowest thread less work, the blocks when
//! both are as balanced (each thread then packs only its own blocks: M = N = 160 over 16
//! blocks of K splits 8/8; over 22 blocks, 16/6, the rows split 80/80). Every output
//! element is computed by one sequence of operations (same blocks, same leaf, same pairwise
//! tree) whatever the thread count, so results are bit-identical for any thread count.
//!
//! **Scratch.** Packed blocks and partials come from a per-thread free list of buffers that
//! are reused across calls (no allocation per call in the steady state, after the first calls
//! have grown them); they stay with their thread (the caller's, or a helper's) until it exits.
//! Their size per thread is bounded at compile time ([`Descriptor::scratch_bytes`]): packed
//! blocks of at most [`PACK_ELEMS`] elements per operand, plus one M×N partial per level of the
//! pairwise tree. The compiler refuses a step whose scratch on every thread together exceeds
//! the memory budget ([`crate::Options::max_bytes`]). The matrix multiply's own packing buffer
//! (`crate::gemm`, about 640 KiB per thread, reused) and `matrixmultiply`'s (allocated on
//! each call) are not counted.

use std::cell::RefCell;
use std::ops::{Add, Mul};

use jjt_ir::DType;
use jjt_ir::ops::DotGeneral;

use crate::gemm::{
    BATCHED_GEMM_MIN, BATCHED_GEMM_TOTAL, GEMM_MIN_MN, GEMM_THRESHOLD, Offsets, PAR_GRAIN,
    PAR_GRAIN_ROWS, PAR_THRESHOLD,
};
use crate::plan::{DotStep, item_size};

/// The largest block of K whose products are summed in one partial. Smaller blocks bound the
/// error more tightly (`(KB + ⌈log2 blocks⌉)·u·Σ|a·b|`); larger ones pack longer rows. Measured
/// with `cargo run --release -p jjt-jit --example contractions -- 1` (f32, 1 thread, median ms
/// of two runs; the machine is shared, so ±5 %):
///
/// | KB | NTK step 16×(10×16384×160) | 64×4096×96, rhs packed | 32×262144×32 |
/// |---|---|---|---|
/// | 1024 | 50.3 | 0.72 | 8.0 |
/// | 4096 | 53.6 | 0.66 | 7.9 |
/// | 16384 | 182 | 0.67 | 7.9 |
///
/// 1024 and 4096 cost the same; 1024 is kept for its tighter bound. (16384 is slow on the NTK
/// step because a packed block of 16384 rows no longer fits the cache with the product.)
pub const KB: usize = 1024;

/// The fewest rows (or columns) an operand's collapsing suffix of free axes must hold for the
/// free axes before it to become outer loops rather than be packed (the plan of a contraction):
/// below it the products are too small for the matrix multiply to pay. 32: the CNN's
/// first-layer kernel gradient, `[16,10,32,32,32]·[16,28,32,32]` over the positions, reads
/// its cotangent in place as 160 products of 32 channels against 28 columns of patches
/// (2.5 → 1.7 ms alone, `jjt bench --profile`; the matrix multiply swaps each so that the
/// channels' rows are copied, not transposed, see `gemm::pack_b_cost`) instead of packing
/// 16 products of 320 rows; the zoo's other models do not change.
pub const DIRECT_MIN_ROWS: usize = 32;

/// The most elements of one operand packed at a time (rows are packed in chunks below it).
/// With both operands packed, A is packed again for each chunk of B's columns unless it fits
/// in one chunk (then it is packed once and kept: a thread's half of the CNN's patch Gram,
/// 512 rows against 1024 columns in two chunks, went from 9.1 to 8.2 ms, median of four
/// alternating runs of 30 calls), and each chunk is one call of the matrix multiply. 2¹⁹
/// (2 MiB of f32) measured best on the zoo's CNN, whose convolution products pack both
/// operands (`jjt bench`, median ms of three alternating rounds of 5 calls): 2¹⁷ 135, 2¹⁹
/// 123, 2²⁰ 129, 2²¹ 133; the transformer and the mixer did not change beyond the machine's
/// noise.
pub const PACK_ELEMS: usize = 1 << 19;

/// One loop around the products: its extent and strides in A, B and C (elements).
#[derive(Clone, Debug, PartialEq)]
struct Loop {
    n: usize,
    a: isize,
    b: isize,
    c: isize,
}

/// One contracted axis: extent and strides in A and B.
#[derive(Clone, Copy, Debug, PartialEq)]
struct KAxis {
    n: usize,
    a: isize,
    b: isize,
}

/// How K is cut into blocks, each a box of the K index space: the axes before `split` fixed,
/// `split` in a range of at most `q`, the axes after it whole.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Blocks {
    /// Number of blocks.
    count: usize,
    /// The axis cut into ranges (`usize::MAX`: one block holds all of K).
    split: usize,
    /// Range length along `split`.
    q: usize,
    /// Ranges per index of the leading axes (`⌈n[split] / q⌉`).
    per_lead: usize,
}

/// The canonical form of one contraction and how it runs; see the module documentation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Descriptor {
    dtype: DType,
    outer: Vec<Loop>,
    /// Outer axes along which neither operand moves (extent, C stride): each product is
    /// computed once, at index 0, and its output block copied along them.
    replicas: Vec<(usize, isize)>,
    /// M axes (outer to inner): extent and stride in A.
    m_axes: Vec<(usize, isize)>,
    /// N axes (outer to inner): extent and stride in B.
    n_axes: Vec<(usize, isize)>,
    /// K axes in the chosen order (outer to inner).
    k_axes: Vec<KAxis>,
    m: usize,
    n: usize,
    k: usize,
    /// Number of products (product of the outer extents).
    products: usize,
    /// C's stride along M and along N.
    rsc: isize,
    csc: isize,
    /// A's (row, K) strides when its M axes and its K axes each collapse to one stride.
    a_direct: Option<(isize, isize)>,
    /// B's (K, column) strides when its K axes and N axes each collapse.
    b_direct: Option<(isize, isize)>,
    /// Leaves call the matrix multiply (`crate::gemm`) (else this module's dot loops).
    gemm: bool,
    /// A, when packed for the matrix multiply, is packed K-outer (rows contiguous, one K
    /// index after another) rather than K-inner: its smallest source stride runs along a row
    /// axis, so the copy runs along memory on both sides instead of transposing, and the
    /// product is one the tile kernel computes anyway (see `a_k_outer`).
    a_k_outer: bool,
    blocks: Blocks,
    /// A is the step's rhs and B its lhs (the product computed as `cᵀ = rhsᵀ·lhsᵀ`, with C's
    /// strides exchanged): the orientation in which less is copied (see `plan`).
    swapped: bool,
}

/// Which path a contraction takes ([`crate::dot_path`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DotKind {
    /// No work: the output is empty, or the contraction is empty and the output is zeros.
    Trivial,
    /// The runtime contraction with matrix-multiply leaves.
    MatrixMultiply,
    /// The runtime contraction with its own vectorised dot loops (small M or N).
    RuntimeLoops,
    /// Inline generated code on vectors.
    InlineVector,
    /// Inline generated code, one element at a time (strict mode and bool contractions only).
    InlineScalar,
}

/// How a contraction step is computed, for the cost model and the tests
/// ([`crate::dot_path`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DotPath {
    /// The path.
    pub kind: DotKind,
    /// Bytes copied into packed blocks per call on one thread (the runtime paths; 0 otherwise).
    /// A product split across threads by rows or columns packs the other operand once per
    /// part.
    pub packed_bytes: usize,
    /// Whether the left operand is packed.
    pub packs_lhs: bool,
    /// Whether the left operand, whose rows or K axes do not collapse, is read in place through
    /// offsets instead (`packs_lhs` is then false), as plans assume on every host
    /// (`Descriptor::gathers_lhs_planned`; a host without the own kernel packs it at run time).
    pub gathers_lhs: bool,
    /// Whether the left operand is packed K-outer (its rows contiguous, one index of K after
    /// another) because its own smallest stride runs along its rows.
    pub packs_lhs_k_outer: bool,
    /// Whether the right operand is packed.
    pub packs_rhs: bool,
    /// Whether the operands exchange roles (the step's rhs is the matrix multiply's A, which
    /// `packs_lhs`, `gathers_lhs` and `packs_lhs_k_outer` then describe, and its lhs is B).
    pub swapped: bool,
    /// Matrix products per call (the runtime paths; 1 otherwise).
    pub products: usize,
    /// Blocks K is cut into (the runtime paths; 1 otherwise).
    pub k_blocks: usize,
    /// Whether the work is split across threads under the policy's thread count.
    pub threaded: bool,
    /// How many times each product's output block is written: the product is computed once
    /// and copied along the axes where neither operand moves (1: no copies).
    pub copies: usize,
    /// Multiply-adds per call (products computed once, not their copies).
    pub macs: usize,
}

/// Whether `axes` (extent, stride; outer to inner) collapse to one stride, and which.
fn collapse(axes: &[(usize, isize)]) -> Option<isize> {
    if axes.windows(2).all(|w| w[0].1 == w[1].1 * w[1].0 as isize) {
        Some(axes.last().map_or(0, |a| a.1))
    } else {
        None
    }
}

/// `s` with its operands exchanged: the same contraction as `rhs·lhs`, whose output axes
/// (batch, rhs free, lhs free) address the same elements of the destination.
fn swap(s: &DotStep) -> DotStep {
    let d = &s.dims;
    let nb = d.lhs_batch.len();
    let lf = DotGeneral::free_axes(s.lhs_shape.len(), &d.lhs_contract, &d.lhs_batch).len();
    let rf = DotGeneral::free_axes(s.rhs_shape.len(), &d.rhs_contract, &d.rhs_batch).len();
    let perm: Vec<usize> = (0..nb).chain(nb + lf..nb + lf + rf).chain(nb..nb + lf).collect();
    DotStep {
        dst: crate::plan::View {
            strides: perm.iter().map(|&i| s.dst.strides[i]).collect(),
            ..s.dst.clone()
        },
        shape: perm.iter().map(|&i| s.shape[i]).collect(),
        lhs: s.rhs.clone(),
        lhs_shape: s.rhs_shape.clone(),
        rhs: s.lhs.clone(),
        rhs_shape: s.lhs_shape.clone(),
        dims: DotGeneral {
            lhs_contract: d.rhs_contract.clone(),
            rhs_contract: d.lhs_contract.clone(),
            lhs_batch: d.rhs_batch.clone(),
            rhs_batch: d.lhs_batch.clone(),
        },
    }
}

impl Descriptor {
    /// The canonical form of `s` (None for bool contractions). `gemm`: whether the leaves may
    /// call the matrix multiply (they do when M and N also reach [`GEMM_MIN_MN`]).
    ///
    /// When an operand's free axes do not collapse to one stride, it is packed for every
    /// product; but if a suffix of them with at least [`DIRECT_MIN_ROWS`] rows collapses, the
    /// axes before it can become outer loops instead (more, smaller products, read in place).
    /// The candidates (neither operand, either, both) are compared by the elements all
    /// products pack together, and the first with the fewest is taken: the split pays only
    /// when it does not multiply the packing of the other operand.
    ///
    /// The operands exchanged (the rhs as A, no free axes turned into loops) are a candidate
    /// too: an operand that only the tile kernel's A can read in place through offsets (a
    /// convolution's patches against a narrow cotangent, in the CNN's last kernel gradient:
    /// 0.77 → 0.45 ms) is then not copied at all. Exchanged with free axes as loops, the
    /// operand read through offsets would be read again for every product (the CNN's
    /// second-layer kernel gradient, 160 products of patches against 64 channels: 5.1 →
    /// 5.4–5.9 ms). Ties keep the step's own order.
    pub(crate) fn plan(s: &DotStep, gemm: bool) -> Option<Descriptor> {
        let base = Self::layout(s, gemm, (false, false))?;
        // Elements of each operand (A, B) packed per call, and their total. A split must not
        // pack the other operand more often than the single product does (the same block
        // again for every product along the new loops, which the total alone would not see:
        // the CNN's first-layer kernel gradient from a JAX export, whose patches were packed
        // for each of 160 products, 6.2 → 9.4 ms).
        let per_side = |d: &Descriptor| {
            let a = if d.a_direct.is_some() || d.gathers_lhs_planned() { 0 } else { d.m * d.k };
            let b = if d.b_direct.is_some() { 0 } else { d.k * d.n };
            (d.products.saturating_mul(a), d.products.saturating_mul(b))
        };
        let packed = |d: &Descriptor| {
            let (a, b) = per_side(d);
            a.saturating_add(b)
        };
        if !base.gemm || packed(&base) == 0 {
            return Some(base);
        }
        let (base_a, base_b) = per_side(&base);
        let mut best = base;
        let swapped = swap(s);
        let trims = [(true, false), (false, true), (true, true)];
        for (st, trim) in trims.map(|t| (s, t)).into_iter().chain([(&swapped, (false, false))]) {
            if let Some(mut d) = Self::layout(st, gemm, trim).filter(|d| d.gemm)
                && packed(&d) < packed(&best)
                && {
                    let (a, b) = per_side(&d);
                    let (a, b) = if std::ptr::eq(st, &swapped) { (b, a) } else { (a, b) };
                    (!trim.0 || b <= base_b) && (!trim.1 || a <= base_a)
                }
            {
                d.swapped = std::ptr::eq(st, &swapped);
                best = d;
            }
        }
        Some(best)
    }

    /// [`Descriptor::plan`] with the free axes of the lhs (`trim.0`) and of the rhs (`trim.1`)
    /// before their longest collapsing suffix turned into outer loops, where that suffix holds
    /// at least [`DIRECT_MIN_ROWS`] rows.
    fn layout(s: &DotStep, gemm: bool, trim: (bool, bool)) -> Option<Descriptor> {
        let DotStep { dst, shape, lhs, lhs_shape, rhs, rhs_shape, dims } = s;
        if dst.dtype == DType::Bool {
            return None;
        }
        let lfree = DotGeneral::free_axes(lhs_shape.len(), &dims.lhs_contract, &dims.lhs_batch);
        let rfree = DotGeneral::free_axes(rhs_shape.len(), &dims.rhs_contract, &dims.rhs_batch);
        let nb = dims.lhs_batch.len();
        let mut outer = Vec::new();
        for (k, (&a, &b)) in dims.lhs_batch.iter().zip(&dims.rhs_batch).enumerate() {
            if shape[k] > 1 {
                let l =
                    Loop { n: shape[k], a: lhs.strides[a], b: rhs.strides[b], c: dst.strides[k] };
                outer.push(l);
            }
        }
        // The free axes of one side: the longest suffix that chains in C and along which the
        // operand moves forms the matrix dimension; the rest are outer loops.
        let mut free = |axes: &[usize], v: &crate::plan::View, start: usize, lhs_side: bool| {
            let trim = if lhs_side { trim.0 } else { trim.1 };
            let all: Vec<(usize, isize, isize)> = axes
                .iter()
                .enumerate()
                .map(|(j, &a)| (shape[start + j], v.strides[a], dst.strides[start + j]))
                .filter(|x| x.0 > 1)
                .collect();
            // Axes along which the operand is broadcast are outer loops (their products are
            // equal; never copied); of the others, the longest suffix that chains in C.
            let mut inner: Vec<(usize, isize, isize)> = Vec::new();
            let mut rest: Vec<(usize, isize, isize)> = Vec::new();
            let mut closed = false;
            for &(n, s, c) in all.iter().rev() {
                let chains = inner.first().is_none_or(|f| c == f.2 * f.0 as isize);
                if s != 0 && chains && !closed {
                    inner.insert(0, (n, s, c));
                } else {
                    closed |= s != 0;
                    rest.push((n, s, c));
                }
            }
            for &(n, s, c) in rest.iter().rev() {
                let (a, b) = if lhs_side { (s, 0) } else { (0, s) };
                outer.push(Loop { n, a, b, c });
            }
            // The axes before the operand's longest collapsing suffix as outer loops too.
            let tail = 1
                + (1..inner.len())
                    .rev()
                    .take_while(|&i| inner[i - 1].1 == inner[i].1 * inner[i].0 as isize)
                    .count();
            let rows: usize =
                inner[inner.len().saturating_sub(tail)..].iter().map(|x| x.0).product();
            if trim && tail < inner.len() && rows >= DIRECT_MIN_ROWS {
                for (n, s, c) in inner.drain(..inner.len() - tail) {
                    let (a, b) = if lhs_side { (s, 0) } else { (0, s) };
                    outer.push(Loop { n, a, b, c });
                }
            }
            inner
        };
        let m_full = free(&lfree, lhs, nb, true);
        let n_full = free(&rfree, rhs, nb + lfree.len(), false);
        let m_axes: Vec<(usize, isize)> = m_full.iter().map(|x| (x.0, x.1)).collect();
        let n_axes: Vec<(usize, isize)> = n_full.iter().map(|x| (x.0, x.1)).collect();
        let rsc = m_full.last().map_or(0, |x| x.2);
        let csc = n_full.last().map_or(0, |x| x.2);
        let m: usize = m_axes.iter().map(|x| x.0).product();
        let n: usize = n_axes.iter().map(|x| x.0).product();
        let ks: Vec<KAxis> = dims
            .lhs_contract
            .iter()
            .zip(&dims.rhs_contract)
            .map(|(&a, &b)| KAxis { n: lhs_shape[a], a: lhs.strides[a], b: rhs.strides[b] })
            .filter(|x| x.n > 1)
            .collect();
        let k: usize = ks.iter().map(|x| x.n).product();
        // Loops along which neither operand moves repeat the same product: copy it instead.
        let (rep, outer): (Vec<Loop>, Vec<Loop>) =
            outer.into_iter().partition(|l| l.a == 0 && l.b == 0);
        let replicas: Vec<(usize, isize)> = rep.iter().map(|l| (l.n, l.c)).collect();
        let products: usize = outer.iter().map(|l| l.n).product();
        let macs = m.saturating_mul(n).saturating_mul(k);
        // The two candidate K orders (A's strides descending, B's strides descending). An
        // operand packed in the other operand's order is read against its strides (short
        // runs, pages far apart), so it counts twice; keep the cheaper order.
        let by = |f: fn(&KAxis) -> isize| {
            let mut o = ks.clone();
            o.sort_by_key(|x| std::cmp::Reverse(f(x).unsigned_abs()));
            o
        };
        let (c0, c1) = (by(|x| x.a), by(|x| x.b));
        // With matrix-multiply leaves any strides do; the dot loops need unit K strides.
        let choose = |mm: bool| {
            let direct = |k_axes: &[KAxis], own_a: bool| {
                let ka: Vec<(usize, isize)> = k_axes.iter().map(|x| (x.n, x.a)).collect();
                let kb: Vec<(usize, isize)> = k_axes.iter().map(|x| (x.n, x.b)).collect();
                let a =
                    collapse(&m_axes).zip(collapse(&ka)).filter(|&(_, cs)| mm || cs == 1 || k == 1);
                let b =
                    collapse(&kb).zip(collapse(&n_axes)).filter(|&(rs, _)| mm || rs == 1 || k == 1);
                let (wa, wb) = if own_a { (1, 2) } else { (2, 1) };
                let cost = a.map_or(wa * m * k, |_| 0) + b.map_or(wb * k * n, |_| 0);
                (a, b, cost)
            };
            let (d0, d1) = (direct(&c0, true), direct(&c1, false));
            if d1.2 < d0.2 { (c1.clone(), d1) } else { (c0.clone(), d0) }
        };
        // Large products with M and N large enough: the matrix multiply. Narrow ones (a
        // matrix–vector product) too when the dot loops would have to pack an operand that
        // the matrix multiply reads in place (it packs small panels itself, in cache).
        // Many products that are each below the threshold but together large (a batch of
        // 32×64×10 products, 320 of them, in the embedding model's kernel) are also matrix
        // multiplies: the inline loops run each on 4-wide vectors with a scalar tail.
        let batched =
            products.saturating_mul(macs) >= BATCHED_GEMM_TOTAL && macs >= BATCHED_GEMM_MIN;
        let mut use_mm = gemm && m.min(n) >= GEMM_MIN_MN && (macs >= GEMM_THRESHOLD || batched);
        let (mut k_axes, (mut a_direct, mut b_direct, cost)) = choose(use_mm);
        if gemm && !use_mm && cost > 0 && macs >= GEMM_THRESHOLD {
            let (kx, d) = choose(true);
            if d.2 == 0 {
                (use_mm, k_axes, a_direct, b_direct) = (true, kx, d.0, d.1);
            }
        }
        let gemm = use_mm;
        let blocks = Blocks::new(&k_axes);
        let ka: Vec<(usize, isize)> = k_axes.iter().map(|x| (x.n, x.a)).collect();
        let b_rs = b_direct.map_or(1, |(rs, _)| rs);
        let a_k_outer = gemm
            && a_direct.is_none()
            && a_k_outer(&m_axes, &ka)
            && !crate::gemm::uses_dot_planned((m, n), k.min(KB), 1, b_rs);
        Some(Descriptor {
            dtype: dst.dtype,
            outer,
            replicas,
            m_axes,
            n_axes,
            k_axes,
            m,
            n,
            k,
            products,
            rsc,
            csc,
            a_direct,
            b_direct,
            gemm,
            a_k_outer,
            blocks,
            swapped: false,
        })
    }

    /// Multiply-adds of one product.
    fn product_macs(&self) -> usize {
        self.m.saturating_mul(self.n).saturating_mul(self.k)
    }

    /// Multiply-adds per call.
    pub(crate) fn macs(&self) -> usize {
        self.product_macs().saturating_mul(self.products)
    }

    /// Whether this is a large product for the matrix multiply: M and N at least
    /// [`GEMM_MIN_MN`], M·N·K per product at least [`GEMM_THRESHOLD`] (or a batch of
    /// smaller products large in total, see [`BATCHED_GEMM_TOTAL`]), and the policy allows
    /// it. (Narrow products may also use it, see [`Descriptor::plan`], but only where no
    /// inline vector form applies.)
    pub(crate) fn is_large(&self) -> bool {
        self.gemm && self.m.min(self.n) >= GEMM_MIN_MN
    }

    /// How many times each product's output block is written (1: no copies along broadcast
    /// axes).
    pub(crate) fn copies(&self) -> usize {
        self.replicas.iter().map(|r| r.0).product()
    }

    /// Multiply-adds of the contraction as written: the products computed once, times their
    /// copies.
    pub(crate) fn macs_with_copies(&self) -> usize {
        self.path(1).macs.saturating_mul(self.copies())
    }

    /// The profile label: the leaves, what is packed, products and blocks of K, e.g.
    /// "matrix multiply, packed rhs, 16 products, 4 blocks of K".
    pub(crate) fn describe(&self) -> String {
        let mut s = self.label().to_string();
        if self.products > 1 {
            s += &format!(", {} products", self.products);
        }
        if self.blocks.count > 1 {
            s += &format!(", {} blocks of K", self.blocks.count);
        }
        if self.swapped {
            s += ", operands swapped";
        }
        let copies: usize = self.replicas.iter().map(|r| r.0).product();
        if copies > 1 {
            s += &format!(", copied ×{copies} along broadcast axes");
        }
        s
    }

    /// The path summary ([`DotPath`]) under `threads`.
    pub(crate) fn path(&self, threads: usize) -> DotPath {
        let size = item_size(self.dtype);
        // As the cost model assumes it on every host (`gathers_lhs_planned`).
        let gathers = self.gathers_lhs_planned();
        let (pa, pb) = (self.a_direct.is_none() && !gathers, self.b_direct.is_none());
        // With both packed, A is packed again for each chunk of B's columns (see `leaf`).
        let jc = (PACK_ELEMS / pad(self.k.min(KB))).clamp(1, self.n.max(1));
        let a_times = if pb { self.n.div_ceil(jc) } else { 1 };
        let per = usize::from(pa) * self.m * self.k * a_times + usize::from(pb) * self.k * self.n;
        DotPath {
            kind: if self.gemm { DotKind::MatrixMultiply } else { DotKind::RuntimeLoops },
            packed_bytes: per.saturating_mul(self.products).saturating_mul(size),
            packs_lhs: pa,
            gathers_lhs: gathers,
            packs_lhs_k_outer: pa && self.a_k_outer,
            packs_rhs: pb,
            swapped: self.swapped,
            products: self.products,
            k_blocks: self.blocks.count,
            threaded: threads > 1 && self.macs() >= PAR_THRESHOLD && self.splits(),
            copies: self.replicas.iter().map(|r| r.0).product(),
            macs: self.macs(),
        }
    }

    /// Whether the work can be cut at all (several products, a wide product, or several
    /// blocks of K).
    fn splits(&self) -> bool {
        self.products >= 2 || self.m.max(self.n) >= 2 * PAR_GRAIN || self.blocks.count >= 2
    }

    /// Whether the matrix multiply reads A, whose rows or K axes do not collapse, in place
    /// through offsets ([`crate::gemm::sgemm_gathered`]) rather than packing it: f32 on a host
    /// with the own kernel, A packed K-inner otherwise, B at most two tiles wide and no dot
    /// kernel for a block of K's full length (a shorter last block that the dot kernel would
    /// take is packed, see `leaf`). The same bits as packing.
    fn gathers_lhs(&self) -> bool {
        let b_rs = self.b_direct.map_or(1, |(rs, _)| rs);
        self.gathers_lhs_planned()
            && <f32 as Elem>::gathers()
            && !crate::gemm::uses_dot((self.m, self.n), self.k.min(KB), 1, b_rs)
    }

    /// [`Descriptor::gathers_lhs`] as the cost model assumes it whatever the host (the own
    /// kernel, and the planned choice of the dot kernel, `gemm::uses_dot_planned`), so that
    /// predictions do not depend on the machine.
    fn gathers_lhs_planned(&self) -> bool {
        let b_rs = self.b_direct.map_or(1, |(rs, _)| rs);
        // Narrow, the kernel reads A's rows in place; wide, the matrix multiply packs A's
        // panels from the offsets, which pays (one copy instead of two) when its rows come
        // in runs of whole panels (K-outer, rows contiguous: a cotangent's channels).
        let runs = self.m_axes.last().is_some_and(|&(n, s)| s == 1 && n % crate::gemm::MR == 0);
        let (narrow, wide) = (crate::gemm::gathers(self.n), self.a_k_outer && runs);
        self.gemm
            && self.dtype == DType::F32
            && self.a_direct.is_none()
            && (narrow && !self.a_k_outer || !narrow && wide)
            && !crate::gemm::uses_dot_planned((self.m, self.n), self.k.min(KB), 1, b_rs)
    }

    /// The leaves and what is packed.
    fn label(&self) -> &'static str {
        if self.gathers_lhs() {
            return if self.b_direct.is_none() {
                "matrix multiply, lhs read through offsets, packed rhs"
            } else {
                "matrix multiply, lhs read through offsets"
            };
        }
        let (pa, pb) = (self.a_direct.is_none(), self.b_direct.is_none());
        match (self.gemm, pa, pb) {
            (true, false, false) => "matrix multiply",
            (true, true, false) => "matrix multiply, packed lhs",
            (true, false, true) => "matrix multiply, packed rhs",
            (true, true, true) => "matrix multiply, packed lhs and rhs",
            (false, false, false) => "runtime dot loops",
            (false, true, false) => "runtime dot loops, packed lhs",
            (false, false, true) => "runtime dot loops, packed rhs",
            (false, true, true) => "runtime dot loops, packed lhs and rhs",
        }
    }

    /// The most scratch one thread holds at once: packed blocks of both operands and one
    /// partial per level of the pairwise tree (bytes).
    pub(crate) fn scratch_bytes(&self) -> usize {
        let kb = self.k.min(KB);
        // As `leaf` chunks its rows: at most PACK_ELEMS elements, or one padded row.
        let pack = |rows: usize| rows.saturating_mul(pad(kb)).min(PACK_ELEMS.max(pad(kb)));
        // K-outer, A's chunk of rows is padded instead of its K (at most 31 more per column).
        let pack_a = |rows: usize| pack(rows) + if self.a_k_outer { 31 * kb } else { 0 };
        let levels = usize::BITS - self.blocks.count.saturating_sub(1).leading_zeros();
        let partials = (levels as usize).saturating_mul(self.m.saturating_mul(self.n));
        (pack_a(self.m) + pack(self.n))
            .saturating_add(partials)
            .saturating_mul(item_size(self.dtype))
    }
}

/// Whether A, with row axes `m_axes` and K axes `k_axes` (extent, stride in A), is cheaper to
/// pack K-outer: its smallest nonzero stride (over axes longer than one) is a row axis's, and
/// no K axis has a unit stride, so K-inner rows would be written one element at a time.
fn a_k_outer(m_axes: &[(usize, isize)], k_axes: &[(usize, isize)]) -> bool {
    let smallest = |axes: &[(usize, isize)]| {
        axes.iter().filter(|x| x.0 > 1 && x.1 != 0).map(|x| x.1.unsigned_abs()).min()
    };
    match (smallest(m_axes), smallest(k_axes)) {
        (Some(m), Some(k)) => m < k,
        _ => false,
    }
}

impl Blocks {
    /// Blocks of at most [`KB`] elements over `k_axes`.
    fn new(k_axes: &[KAxis]) -> Blocks {
        let k: usize = k_axes.iter().map(|x| x.n).product();
        if k <= KB {
            return Blocks { count: 1, split: usize::MAX, q: 0, per_lead: 1 };
        }
        // Trailing axes whose product fits in a block stay whole.
        let mut split = k_axes.len() - 1;
        let mut trail = 1usize;
        while trail * k_axes[split].n <= KB {
            trail *= k_axes[split].n;
            split -= 1; // k > KB, so some axis does not fit and this stops at 0 at the latest.
        }
        let q = (KB / trail).max(1);
        let per_lead = k_axes[split].n.div_ceil(q);
        let lead: usize = k_axes[..split].iter().map(|x| x.n).product();
        Blocks { count: lead * per_lead, split, q, per_lead }
    }

    /// Block `b`'s box: offsets of its first element in A and B; its axes (extent, A stride,
    /// B stride; outer to inner) go to `bx`.
    fn get(&self, k_axes: &[KAxis], b: usize, bx: &mut Vec<KAxis>) -> (isize, isize) {
        bx.clear();
        if self.split == usize::MAX {
            bx.extend_from_slice(k_axes);
            return (0, 0);
        }
        let (mut lead, chunk) = (b / self.per_lead, b % self.per_lead);
        let (mut oa, mut ob) = (0isize, 0isize);
        for ax in k_axes[..self.split].iter().rev() {
            let i = (lead % ax.n) as isize;
            lead /= ax.n;
            oa += i * ax.a;
            ob += i * ax.b;
        }
        let s = k_axes[self.split];
        let from = chunk * self.q;
        let len = self.q.min(s.n - from);
        oa += from as isize * s.a;
        ob += from as isize * s.b;
        bx.push(KAxis { n: len, ..s });
        bx.extend_from_slice(&k_axes[self.split + 1..]);
        (oa, ob)
    }
}

// ---------------------------------------------------------------------------------------------
// Run time.

/// The element types the runtime contraction handles.
pub(crate) trait Elem:
    Copy + Default + Add<Output = Self> + Mul<Output = Self> + Send + Sync + 'static
{
    /// `c = a·b` with the matrix multiply (`crate::gemm`), a part of a product of `whole`
    /// (M, N) rows and columns, whose extents choose the kernel; `share`: what it shares with
    /// the next products on this thread (`crate::gemm::Sharing`).
    ///
    /// # Safety
    /// The pointers are aligned and valid for every element the extents and strides address,
    /// and `c` overlaps neither `a` nor `b`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn mm(
        m: usize,
        k: usize,
        n: usize,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        c: *mut Self,
        rsc: isize,
        csc: isize,
        whole: (usize, usize),
        share: crate::gemm::Sharing,
    );

    /// Whether [`Elem::mm_gathered`] runs the matrix multiply's own kernel on this host.
    fn gathers() -> bool;

    /// `c = A·b` with A read in place through offsets and B at most two tiles wide
    /// ([`crate::gemm::sgemm_gathered`]): the bits of packing A and calling [`Elem::mm`], when
    /// [`Elem::gathers`] and `mm` would not take the dot kernel. B and c as (first element,
    /// row stride, column stride).
    ///
    /// # Safety
    /// As [`crate::gemm::sgemm_gathered`].
    unsafe fn mm_gathered(
        a: Offsets<'_, Self>,
        n: usize,
        b: (*const Self, isize, isize),
        c: (*mut Self, isize, isize),
        share: crate::gemm::Sharing,
    );
}

impl Elem for f32 {
    fn gathers() -> bool {
        cfg!(target_arch = "x86_64") && crate::gemm::has_own_kernel()
    }

    unsafe fn mm_gathered(
        a: Offsets<'_, f32>,
        n: usize,
        b: (*const f32, isize, isize),
        c: (*mut f32, isize, isize),
        share: crate::gemm::Sharing,
    ) {
        #[cfg(target_arch = "x86_64")]
        if crate::gemm::has_own_kernel() {
            // SAFETY: forwarded from the caller; the host has AVX-512 F.
            return unsafe { crate::gemm::sgemm_gathered(a, n, b, c, share) };
        }
        // SAFETY: forwarded from the caller.
        unsafe { gathered_loops(a, n, b, c) }
    }

    unsafe fn mm(
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
        whole: (usize, usize),
        share: crate::gemm::Sharing,
    ) {
        #[cfg(target_arch = "x86_64")]
        if crate::gemm::has_own_kernel() {
            // SAFETY: forwarded from the caller; the host has AVX-512 F.
            return unsafe {
                crate::gemm::sgemm(m, k, n, a, rsa, csa, b, rsb, csb, c, rsc, csc, whole, share)
            };
        }
        // SAFETY: forwarded from the caller.
        unsafe { matrixmultiply::sgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, csc) }
    }
}

impl Elem for f64 {
    fn gathers() -> bool {
        false
    }

    unsafe fn mm_gathered(
        a: Offsets<'_, f64>,
        n: usize,
        b: (*const f64, isize, isize),
        c: (*mut f64, isize, isize),
        _share: crate::gemm::Sharing,
    ) {
        // SAFETY: forwarded from the caller.
        unsafe { gathered_loops(a, n, b, c) }
    }

    unsafe fn mm(
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
        _whole: (usize, usize),
        _share: crate::gemm::Sharing,
    ) {
        // SAFETY: forwarded from the caller.
        unsafe { matrixmultiply::dgemm(m, k, n, 1.0, a, rsa, csa, b, rsb, csb, 0.0, c, rsc, csc) }
    }
}

/// [`Elem::mm_gathered`] one element at a time (each a sum over K in increasing order), for
/// hosts and types without the own kernel; the runtime contraction never calls it there
/// ([`Elem::gathers`] is false), but the method is total.
///
/// # Safety
/// As [`crate::gemm::sgemm_gathered`].
unsafe fn gathered_loops<T: Copy + Default + Add<Output = T> + Mul<Output = T>>(
    Offsets { a, rows, koff }: Offsets<'_, T>,
    n: usize,
    (b, rsb, csb): (*const T, isize, isize),
    (c, rsc, csc): (*mut T, isize, isize),
) {
    for (i, &r) in rows.iter().enumerate() {
        for j in 0..n as isize {
            let mut acc = T::default();
            for (q, &o) in koff.iter().enumerate() {
                // SAFETY: A's element (i, q), B's (q, j) and c's (i, j) are valid (caller).
                acc = acc + unsafe { *a.offset(r + o) * *b.offset(q as isize * rsb + j * csb) };
            }
            // SAFETY: as above.
            unsafe { *c.offset(i as isize * rsc + j * csc) = acc };
        }
    }
}

/// The offsets (elements) of the indices `r.0..r.1` of the index space `axes` (extent,
/// stride; outer to inner) in row-major order, into `out`.
fn offsets(axes: &[(usize, isize)], r: (usize, usize), out: &mut Vec<isize>) {
    out.clear();
    if r.1 <= r.0 {
        return;
    }
    // The index of r.0 once (divisions), then an odometer: divisions per element were a
    // fifth of a convolution's 64 small grouped products (the CNN's last layer backward).
    let mut idx = [0usize; 8];
    if axes.len() > idx.len() {
        out.extend((r.0..r.1).map(|mut i| {
            let mut off = 0isize;
            for &(n, st) in axes.iter().rev() {
                off += (i % n.max(1)) as isize * st;
                i /= n.max(1);
            }
            off
        }));
        return;
    }
    let (mut i, mut off) = (r.0, 0isize);
    for (x, &(n, st)) in idx.iter_mut().zip(axes.iter().rev()) {
        *x = i % n.max(1);
        off += *x as isize * st;
        i /= n.max(1);
    }
    out.reserve(r.1 - r.0);
    for _ in r.0..r.1 {
        out.push(off);
        for (x, &(n, st)) in idx.iter_mut().zip(axes.iter().rev()) {
            *x += 1;
            off += st;
            if *x < n {
                break;
            }
            off -= n as isize * st;
            *x = 0;
        }
    }
}

/// Lanes of the dot loops: independent partial sums that the compiler keeps in vector
/// registers. 64 so that even the widest vectors (four AVX-512 registers of 16 f32) have
/// enough independent chains to hide the adder's latency; the lanes, and so the result, are
/// the same whichever instruction set runs them.
const LANES: usize = 64;

/// `Σ x[i]·y[i]`: 64 lanes over the full chunks, the tail's products added one per lane, the
/// lanes combined pairwise.
/// The loop is compiled three times (AVX-512, AVX2, the baseline) and the widest the host has
/// runs: the same operations in the same order (no FMA contraction), so the same bits.
fn dot<T: Elem>(x: &[T], y: &[T]) -> T {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the host has AVX-512F (checked just above).
            return unsafe { dot_avx512(x, y) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the host has AVX2 (checked just above).
            return unsafe { dot_avx2(x, y) };
        }
    }
    dot_lanes(x, y)
}

/// [`dot_lanes`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn dot_avx512<T: Elem>(x: &[T], y: &[T]) -> T {
    dot_lanes(x, y)
}

/// [`dot_lanes`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_avx2<T: Elem>(x: &[T], y: &[T]) -> T {
    dot_lanes(x, y)
}

/// The dot loop itself, inlined into each instruction-set version.
#[inline(always)]
fn dot_lanes<T: Elem>(x: &[T], y: &[T]) -> T {
    if x.len() < LANES {
        // Shorter than one chunk: in order (no lanes to combine).
        let mut s = x[0] * y[0];
        for (&a, &b) in x[1..].iter().zip(&y[1..]) {
            s = s + a * b;
        }
        return s;
    }
    let full = x.len() / LANES * LANES;
    let mut acc = [T::default(); LANES];
    for (cx, cy) in x[..full].chunks_exact(LANES).zip(y[..full].chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] = acc[l] + cx[l] * cy[l];
        }
    }
    // The tail: one more product in each of the first lanes (independent chains, not one
    // serial run).
    for (l, (&a, &b)) in x[full..].iter().zip(&y[full..]).enumerate() {
        acc[l] = acc[l] + a * b;
    }
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] = acc[l] + acc[l + w];
        }
    }
    acc[0]
}

thread_local! {
    /// This thread's free scratch buffers (8-byte words, so aligned for f32 and f64).
    static FREE: RefCell<Vec<Vec<u64>>> = const { RefCell::new(Vec::new()) };
}

/// A scratch buffer from this thread's free list, given back when dropped.
struct Scratch {
    words: Vec<u64>,
}

impl Scratch {
    /// At least `elems` elements of `T`.
    fn take<T>(elems: usize) -> Scratch {
        let need = (elems * size_of::<T>()).div_ceil(8);
        let mut words = FREE.try_with(|f| f.borrow_mut().pop()).ok().flatten().unwrap_or_default();
        if words.len() < need {
            words.resize(need, 0);
        }
        Scratch { words }
    }

    fn ptr<T>(&mut self) -> *mut T {
        self.words.as_mut_ptr().cast()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let words = std::mem::take(&mut self.words);
        // At thread exit the list may be gone; the buffer is then simply freed.
        let _ = FREE.try_with(|f| f.borrow_mut().push(words));
    }
}

/// Index lists a thread reuses from leaf to leaf (so a call with many small products does not
/// allocate per product).
#[derive(Default)]
struct Bufs {
    bx: Vec<KAxis>,
    a: Vec<(usize, isize)>,
    b: Vec<(usize, isize)>,
    walk: Vec<(usize, isize, isize)>,
    idx: Vec<usize>,
    /// A read in place through offsets: its rows' and its K indices' offsets.
    rows: Vec<isize>,
    koff: Vec<isize>,
}

/// An output block: element (i, j) at `p + i·rs + j·cs`.
#[derive(Clone, Copy)]
struct Out<T> {
    p: *mut T,
    rs: isize,
    cs: isize,
}

/// What one call computes, and a part of it: product pointers, M and N ranges, block range.
#[derive(Clone, Copy)]
struct Part<T> {
    d: *const Descriptor,
    /// Leaves call the matrix multiply (the descriptor says so and every buffer is aligned).
    mm: bool,
    /// Operands read in place (else packed); A's and B's (row, column) strides.
    a_direct: Option<(isize, isize)>,
    b_direct: Option<(isize, isize)>,
    /// A packed K-outer (the descriptor's `a_k_outer`, with matrix-multiply leaves).
    a_k_outer: bool,
    a: *const T,
    b: *const T,
    i: (usize, usize),
    j: (usize, usize),
    blocks: (usize, usize),
    out: Out<T>,
    /// This call's number, under which its products may share a packed B
    /// ([`crate::gemm::new_call`]).
    call: u64,
}

// SAFETY: a `Part` is sent to another thread only by `join` in `region` or shared by `share`
// in `products`, which hand the threads disjoint output blocks (different products, different
// rows or columns, or the caller's output and a partial the caller waits for); A, B and the
// descriptor are only read, and `join` and `share` return after every part finishes, while the
// caller keeps every buffer alive.
unsafe impl<T> Send for Part<T> {}
// SAFETY: as for `Send`.
unsafe impl<T> Sync for Part<T> {}

/// Pieces per thread into which [`products`] cuts a call's products (when it has that many),
/// so that a thread that falls behind takes fewer of them.
const PRODUCT_PIECES_PER_THREAD: usize = 4;

/// A call's products `p0..p1` on up to `threads` threads.
///
/// # Safety
/// As [`jjt_contract_f32`].
unsafe fn products<T: Elem>(base: Part<T>, c: *mut T, p: (usize, usize), threads: usize) {
    // SAFETY: the descriptor outlives the call (owned by the compiled handle).
    let d = unsafe { &*base.d };
    let work = (p.1 - p.0).saturating_mul(d.product_macs());
    let count = p.1 - p.0;
    if threads >= 2 && work >= PAR_THRESHOLD && count >= 2 * threads {
        // Contiguous runs of products that the threads claim as they go.
        let pieces = count.min(threads * PRODUCT_PIECES_PER_THREAD);
        let at = |q: usize| p.0 + count * q / pieces;
        let cc = SendPtr(c);
        crate::pool::share(pieces, threads, &|q| {
            // SAFETY: the products of piece q write their own output blocks; each piece runs
            // once.
            unsafe { products(base, cc.get(), (at(q), at(q + 1)), 1) }
        });
        return;
    }
    if threads >= 2 && work >= PAR_THRESHOLD && count >= 2 {
        // Fewer products than two per thread: halves, each with its share of the threads.
        let left = threads / 2;
        let at = p.0 + (count * left / threads).max(1);
        let cc = SendPtr(c);
        crate::pool::join(
            // SAFETY: products p.0..at write their own output blocks.
            move || unsafe { products(base, cc.get(), (p.0, at), left) },
            // SAFETY: as above, for at..p.1.
            move || unsafe { products(base, cc.get(), (at, p.1), threads - left) },
        );
        return;
    }
    let threads = if count >= 2 { 1 } else { threads };
    let mut bufs = Bufs::default();
    for q in p.0..p.1 {
        let (mut oa, mut ob, mut oc, mut rest) = (0isize, 0isize, 0isize, q);
        for l in d.outer.iter().rev() {
            let i = (rest % l.n) as isize;
            rest /= l.n;
            oa += i * l.a;
            ob += i * l.b;
            oc += i * l.c;
        }
        let part = Part {
            a: base.a.wrapping_offset(oa),
            b: base.b.wrapping_offset(ob),
            i: (0, d.m),
            j: (0, d.n),
            blocks: (0, d.blocks.count),
            out: Out { p: c.wrapping_offset(oc), rs: d.rsc, cs: d.csc },
            ..base
        };
        // SAFETY: forwarded; `part` addresses product q.
        unsafe { region(part, threads, &mut bufs) };
    }
}

/// A raw pointer that may cross to another thread (see [`Part`]'s `Send`).
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);
// SAFETY: as for `Part`.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as for `Part`.
unsafe impl<T> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    fn get(self) -> *mut T {
        self.0
    }
}

/// One product's rows `i`, columns `j` and blocks of K into `out` (whose (0, 0) is element
/// (i.0, j.0)), on up to `threads` threads.
///
/// # Safety
/// As [`jjt_contract_f32`].
unsafe fn region<T: Elem>(p: Part<T>, threads: usize, bufs: &mut Bufs) {
    // SAFETY: the descriptor outlives the call.
    let d = unsafe { &*p.d };
    let (mi, nj) = (p.i.1 - p.i.0, p.j.1 - p.j.0);
    let nblocks = p.blocks.1 - p.blocks.0;
    let work = mi.saturating_mul(nj).saturating_mul(d.k.min(nblocks.saturating_mul(KB)));
    if threads >= 2 && work >= PAR_THRESHOLD {
        let left = threads / 2;
        let extent = mi.max(nj);
        // Each split's slowest side against an even split (1: perfectly balanced): cutting
        // the longer of M and N in whole grains, or the top pairwise combination of K's blocks
        // (then each thread packs only its own blocks, where a cut of M or N packs the other
        // operand on both threads).
        let slowest = |x: usize, total: usize| {
            let per = |w: usize, t: usize| w as f64 / t as f64;
            per(x, left).max(per(total - x, threads - left)) * threads as f64 / total as f64
        };
        // Rows in grains of PAR_GRAIN_ROWS (two register tiles of the tile kernel, four of
        // the dot kernel), columns of PAR_GRAIN (one tile).
        let grain = if nj > mi { PAR_GRAIN } else { PAR_GRAIN_ROWS };
        let at = (extent * left / threads).div_ceil(grain) * grain;
        let mn = (extent >= 2 * grain).then(|| slowest(at.clamp(grain, extent - grain), extent));
        let k = (nblocks >= 2).then(|| slowest(split_point(nblocks), nblocks));
        // As balanced, the blocks of K win: a cut of M or N packs the other operand on both
        // threads (the transformer's 160×160 Gram products over 16 blocks of K: a cut of
        // rows 80/80 was 3.3 → 3.7 ms against 8 + 8 blocks).
        if mn.is_some_and(|mn| k.is_none_or(|k| mn < k)) {
            // Cut the longer of M and N.
            let at = at.clamp(grain, extent - grain);
            let (mut x, mut y) = (p, p);
            if nj > mi {
                x.j.1 = p.j.0 + at;
                y.j.0 = p.j.0 + at;
                y.out.p = p.out.p.wrapping_offset(at as isize * p.out.cs);
            } else {
                x.i.1 = p.i.0 + at;
                y.i.0 = p.i.0 + at;
                y.out.p = p.out.p.wrapping_offset(at as isize * p.out.rs);
            }
            crate::pool::join(
                // SAFETY: `x` and `y` write disjoint rows (or columns) of `out`.
                move || unsafe { region(x, left, bufs) },
                // SAFETY: as above.
                move || unsafe { region(y, threads - left, &mut Bufs::default()) },
            );
            return;
        }
        if nblocks >= 2 {
            // The top pairwise combination's halves on two threads.
            let half = split_point(nblocks);
            let mut tmp = Scratch::take::<T>(mi * nj);
            let t = tmp.ptr::<T>();
            let (mut x, mut y) = (p, p);
            x.blocks.1 = p.blocks.0 + half;
            y.blocks.0 = p.blocks.0 + half;
            y.out = Out { p: t, rs: nj as isize, cs: 1 };
            crate::pool::join(
                // SAFETY: `x` writes `out`, `y` the partial `tmp`, which lives until after join.
                move || unsafe { region(x, left, bufs) },
                // SAFETY: as above.
                move || unsafe { region(y, threads - left, &mut Bufs::default()) },
            );
            // SAFETY: both blocks cover mi×nj elements.
            unsafe { add_into(p.out, y.out, mi, nj) };
            return;
        }
    }
    // SAFETY: forwarded.
    unsafe { tree(&p, d, bufs) }
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn split_point(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// `out += tmp` over mi×nj elements (`tmp` contiguous, from this module's scratch).
///
/// # Safety
/// Both blocks are valid for mi×nj elements.
unsafe fn add_into<T: Elem>(out: Out<T>, tmp: Out<T>, mi: usize, nj: usize) {
    for i in 0..mi as isize {
        for j in 0..nj as isize {
            // SAFETY: (i, j) is inside both blocks; `out` may be unaligned (`call_raw`).
            unsafe {
                let o = out.p.offset(i * out.rs + j * out.cs);
                let t = tmp.p.offset(i * tmp.rs + j * tmp.cs).read();
                o.write_unaligned(o.read_unaligned() + t);
            }
        }
    }
}

/// Blocks `p.blocks` of one product region on this thread: one block is a leaf; more combine
/// as `S(lo..lo+h) + S(lo+h..hi)`.
///
/// # Safety
/// As [`jjt_contract_f32`].
unsafe fn tree<T: Elem>(p: &Part<T>, d: &Descriptor, bufs: &mut Bufs) {
    let (lo, hi) = p.blocks;
    if hi - lo == 1 {
        // SAFETY: forwarded.
        unsafe { leaf(p, d, lo, bufs) };
        return;
    }
    let h = split_point(hi - lo);
    let (mi, nj) = (p.i.1 - p.i.0, p.j.1 - p.j.0);
    // SAFETY: forwarded.
    unsafe { tree(&Part { blocks: (lo, lo + h), ..*p }, d, bufs) };
    let mut tmp = Scratch::take::<T>(mi * nj);
    let t = Out { p: tmp.ptr::<T>(), rs: nj as isize, cs: 1 };
    // SAFETY: forwarded; the partial holds mi×nj elements.
    unsafe {
        tree(&Part { blocks: (lo + h, hi), out: t, ..*p }, d, bufs);
        add_into(p.out, t, mi, nj);
    }
}

/// Block `blk` of one product region, into `p.out`.
///
/// # Safety
/// As [`jjt_contract_f32`].
unsafe fn leaf<T: Elem>(p: &Part<T>, d: &Descriptor, blk: usize, bufs: &mut Bufs) {
    let (oa, ob) = d.blocks.get(&d.k_axes, blk, &mut bufs.bx);
    let bx = &bufs.bx;
    let kl: usize = bx.iter().map(|x| x.n).product();
    let (i0, i1, j0, j1) = (p.i.0, p.i.1, p.j.0, p.j.1);
    // Packed rows (contiguous along K) are `ld` elements apart: a whole number of cache lines,
    // an odd number of them, so that the matrix multiply's reads down a column of packed rows
    // do not all fall into one cache set (as rows 2^n bytes apart would).
    let ld = pad(kl);
    // Rows packed at a time: all of them, or chunks of at most PACK_ELEMS elements (at least
    // one row).
    let chunk = |direct: bool, rows: usize| {
        if direct { rows } else { (PACK_ELEMS / ld).clamp(1, rows.max(1)) }
    };
    // An A whose rows or K axes do not collapse, against a B at most two tiles wide (whose
    // product the tile kernel computes reading A in place): read where it lies through
    // offsets rather than packed (`gemm::sgemm_gathered`, the same chains, so the same bits;
    // on the CNN the backward products through its convolutions copied their patches).
    let b_rs = p.b_direct.map_or(1, |(rs, _)| rs);
    let gather_a = p.mm
        && p.a_direct.is_none()
        && d.gathers_lhs()
        && !crate::gemm::uses_dot((d.m, d.n), kl, 1, b_rs);
    let ic = if gather_a { i1 - i0 } else { chunk(p.a_direct.is_some(), i1 - i0) };
    let jc = chunk(p.b_direct.is_some(), j1 - j0);
    // K-outer, A's packed columns (one K index each) are `ldm` elements apart.
    let ldm = pad(ic);
    let a_len = if p.a_k_outer { kl * ldm } else { ic * ld };
    let mut sa = (p.a_direct.is_none() && !gather_a).then(|| Scratch::take::<T>(a_len));
    let mut sb = p.b_direct.is_none().then(|| Scratch::take::<T>(jc * ld));
    let (mut a_axes, mut b_axes) = (std::mem::take(&mut bufs.a), std::mem::take(&mut bufs.b));
    a_axes.clear();
    b_axes.clear();
    a_axes.extend(bx.iter().map(|x| (x.n, x.a)));
    b_axes.extend(bx.iter().map(|x| (x.n, x.b)));
    let (mut rows, mut koff) = (std::mem::take(&mut bufs.rows), std::mem::take(&mut bufs.koff));
    if gather_a {
        offsets(&d.m_axes, (i0, i1), &mut rows);
        offsets(&a_axes, (0, kl), &mut koff);
    }
    let walk = (&mut bufs.walk, &mut bufs.idx);
    // A packed in one chunk is packed once, for B's first chunk, and kept for the others.
    let a_whole = ic >= i1 - i0;
    let mut a_kept: Option<(*const T, isize, isize)> = None;
    let mut jb = j0;
    while jb < j1 {
        let je = (jb + jc).min(j1);
        // B's block: (K, column) strides.
        let (bp, rsb, csb) = match p.b_direct {
            Some((rs, cs)) => (p.b.wrapping_offset(ob + jb as isize * cs), rs, cs),
            None => {
                let dst = sb.as_mut().map_or(std::ptr::null_mut(), Scratch::ptr::<T>);
                let (rs, cs) = (1, ld as isize);
                // SAFETY: rows jb..je of B's N axes and the block's box are inside B; `dst`
                // holds jc·kl elements.
                unsafe {
                    gather(
                        p.b.wrapping_offset(ob),
                        &d.n_axes,
                        (jb, je),
                        &b_axes,
                        (dst, cs, rs),
                        walk.0,
                        walk.1,
                    )
                };
                (dst.cast_const(), rs, cs)
            }
        };
        let mut ib = i0;
        while ib < i1 {
            let ie = (ib + ic).min(i1);
            let (ap, rsa, csa) = match (p.a_direct, a_kept) {
                _ if gather_a => (p.a, 0, 0),
                (Some((rs, cs)), _) => (p.a.wrapping_offset(oa + ib as isize * rs), rs, cs),
                (None, Some(kept)) => kept,
                (None, None) => {
                    let dst = sa.as_mut().map_or(std::ptr::null_mut(), Scratch::ptr::<T>);
                    let (rs, cs) = if p.a_k_outer { (1, ldm as isize) } else { (ld as isize, 1) };
                    // SAFETY: as for B.
                    unsafe {
                        gather(
                            p.a.wrapping_offset(oa),
                            &d.m_axes,
                            (ib, ie),
                            &a_axes,
                            (dst, rs, cs),
                            walk.0,
                            walk.1,
                        )
                    };
                    if a_whole {
                        a_kept = Some((dst.cast_const(), rs, cs));
                    }
                    (dst.cast_const(), rs, cs)
                }
            };
            let o = p
                .out
                .p
                .wrapping_offset((ib - i0) as isize * p.out.rs + (jb - j0) as isize * p.out.cs);
            let (mb, nbk) = (ie - ib, je - jb);
            // The matrix multiply may keep B's packed panels for the next product only when
            // both operands are read where they lie (either may be its B): this module's own
            // packed blocks are rewritten from product to product at the same addresses.
            // Consecutive products share an operand that does not move along the innermost
            // outer loop.
            let share = if (p.a_direct.is_some() || gather_a) && p.b_direct.is_some() {
                let along = |f: fn(&Loop) -> isize| match d.outer.last() {
                    Some(l) if f(l) == 0 => l.n,
                    _ => 1,
                };
                crate::gemm::Sharing { call: p.call, a: along(|l| l.a), b: along(|l| l.b) }
            } else {
                crate::gemm::Sharing::NONE
            };
            if gather_a {
                // SAFETY: rows ib..ie at the block's K offsets are inside A (the descriptor's
                // extents and strides); B's block and the output block as below.
                unsafe {
                    T::mm_gathered(
                        Offsets {
                            a: p.a.wrapping_offset(oa),
                            rows: &rows[ib - i0..ie - i0],
                            koff: &koff,
                        },
                        nbk,
                        (bp, rsb, csb),
                        (o, p.out.rs, p.out.cs),
                        share,
                    )
                };
            } else if p.mm {
                // SAFETY: every pointer is aligned (checked on entry) and covers the block.
                unsafe {
                    T::mm(
                        mb,
                        kl,
                        nbk,
                        ap,
                        rsa,
                        csa,
                        bp,
                        rsb,
                        csb,
                        o,
                        p.out.rs,
                        p.out.cs,
                        (d.m, d.n),
                        share,
                    )
                };
            } else {
                for i in 0..mb as isize {
                    // SAFETY: in the dot loops rows of A and columns of B are contiguous along
                    // K (packed, or direct with unit K stride and aligned) and hold kl elements.
                    let x = unsafe { std::slice::from_raw_parts(ap.offset(i * rsa), kl) };
                    for j in 0..nbk as isize {
                        // SAFETY: as above; (i, j) is inside the output block.
                        unsafe {
                            let y = std::slice::from_raw_parts(bp.offset(j * csb), kl);
                            o.offset(i * p.out.rs + j * p.out.cs).write_unaligned(dot(x, y));
                        }
                    }
                }
            }
            ib = ie;
        }
        jb = je;
    }
    (bufs.a, bufs.b) = (a_axes, b_axes);
    (bufs.rows, bufs.koff) = (rows, koff);
}

/// `kl` rounded up to an odd multiple of 16 elements.
fn pad(kl: usize) -> usize {
    kl.next_multiple_of(16) | 16
}

/// Copy rows `r.0..r.1` (flat indices over the free axes `free`) of a block whose K box is
/// `bx` (extent, stride) into `dst`: row `r` and flat K index `q` (row-major over the box) at
/// `(r − r.0)·row + q·unit`. The box is walked in the order of the source's strides (the
/// smallest innermost) so the reads run along memory ([`walk_order`]).
///
/// # Safety
/// `src` (with the rows' and box's offsets) is valid for reads (possibly unaligned) and `dst`
/// for `(r.1 − r.0)·Π extents` writes.
unsafe fn gather<T: Copy>(
    src: *const T,
    free: &[(usize, isize)],
    r: (usize, usize),
    bx: &[(usize, isize)],
    (dst, row, unit): (*mut T, isize, isize),
    axes: &mut Vec<(usize, isize, isize)>,
    idx: &mut Vec<usize>,
) {
    // Destination strides of the box in flat (row-major) order, then sorted by source stride.
    axes.clear();
    let mut ds = unit;
    for &(n, s) in bx.iter().rev() {
        axes.push((n, s, ds));
        ds *= n as isize;
    }
    let total: usize = free.iter().map(|x| x.0).product();
    if free.len() == 1 || (free.len() > 1 && r == (0, total)) {
        // The rows form a box too (a range of one axis, or every row): one walk over rows and
        // K together in the order of the source's strides, so a source that is contiguous
        // along its rows (a transposed operand) is read along memory as well.
        let all = axes;
        let mut off = 0isize;
        let mut ds = row;
        for (a, &(n, s)) in free.iter().enumerate().rev() {
            let n = if free.len() == 1 { r.1 - r.0 } else { n };
            if a == 0 && free.len() == 1 {
                off = r.0 as isize * s;
            }
            all.push((n, s, ds));
            ds *= n as isize;
        }
        all.sort_by_key(walk_order);
        merge_chained(all);
        // SAFETY: the rows' and the box's elements are inside the buffers (caller).
        unsafe { copy_box(src.wrapping_offset(off), dst, all) };
        return;
    }
    axes.sort_by_key(walk_order);
    merge_chained(axes);
    // The first row's multi-index over the free axes.
    idx.clear();
    idx.resize(free.len(), 0);
    let mut rest = r.0;
    let mut off = 0isize;
    for (a, &(n, s)) in free.iter().enumerate().rev() {
        idx[a] = rest % n;
        rest /= n;
        off += idx[a] as isize * s;
    }
    for r_ in 0..(r.1 - r.0) as isize {
        // SAFETY: the row's source and destination ranges are inside the buffers.
        unsafe { copy_box(src.wrapping_offset(off), dst.wrapping_offset(r_ * row), axes) };
        for a in (0..free.len()).rev() {
            idx[a] += 1;
            off += free[a].1;
            if idx[a] < free[a].0 {
                break;
            }
            off -= free[a].1 * free[a].0 as isize;
            idx[a] = 0;
        }
    }
}

/// The order in which [`gather`] walks a box's axes (extent, source stride, destination
/// stride), as a sort key: the source's strides descending, so the reads run along memory;
/// among axes the source moves along alike, the destination's strides descending, so the
/// innermost run is contiguous on both sides where one is. A convolution's patches packed
/// K-inner have two axes of unit source stride, a window column (3, destination stride one
/// packed row) and an image row (16, destination stride 1): the row innermost copies runs of
/// 16 elements instead of scattering runs of 3 (the CNN's second-layer kernel gradient, 16
/// products of 640×256×288, 4.54 → 4.01 ms alone).
fn walk_order(x: &(usize, isize, isize)) -> (std::cmp::Reverse<usize>, std::cmp::Reverse<usize>) {
    (std::cmp::Reverse(x.1.unsigned_abs()), std::cmp::Reverse(x.2.unsigned_abs()))
}

/// Merge neighbouring axes of a walk (extent, source stride, destination stride; outer to
/// inner) that chain on both sides into one: the innermost run then holds all their elements
/// (the first layer's kernel Jacobian packed for its Gram product: window positions 3·3·3 in a
/// row of 28, runs of 27 instead of 3: 0.29 → 0.16 ms alone, 0.38 → 0.21 ms in the CNN).
fn merge_chained(axes: &mut Vec<(usize, isize, isize)>) {
    let mut j = axes.len();
    while j >= 2 {
        let ((no, so, dout), (ni, si, di)) = (axes[j - 2], axes[j - 1]);
        if so == si * ni as isize && dout == di * ni as isize {
            axes[j - 2] = (no * ni, si, di);
            axes.remove(j - 1);
        }
        j -= 1;
    }
}

/// Copy a box (extent, source stride, destination stride per axis; outer to inner).
///
/// # Safety
/// `s` is valid for reads and `d` for writes (either possibly unaligned) of every element the
/// box addresses, and the two do not overlap.
unsafe fn copy_box<T: Copy>(s: *const T, d: *mut T, axes: &[(usize, isize, isize)]) {
    match axes {
        [] => {
            // SAFETY: inside the buffers (caller).
            unsafe { d.write_unaligned(s.read_unaligned()) }
        }
        [(n, ss, dd)] => {
            // SAFETY: inside the buffers (caller), and `d` never overlaps the source.
            unsafe { copy_run(s, *ss, d, *dd, *n) }
        }
        [(n0, s0, d0), (n, ss, dd)] => {
            for t in 0..*n0 as isize {
                // SAFETY: as above.
                unsafe {
                    copy_run(s.wrapping_offset(t * s0), *ss, d.wrapping_offset(t * d0), *dd, *n)
                }
            }
        }
        [(n, ss, dd), rest @ ..] => {
            for t in 0..*n as isize {
                // SAFETY: as above.
                unsafe { copy_box(s.wrapping_offset(t * ss), d.wrapping_offset(t * dd), rest) }
            }
        }
    }
}

/// Copy `n` elements from stride `ss` to stride `dd`. A contiguous run is copied as bytes
/// (either end may be unaligned, as buffers passed to `call_raw` may be); one of at most 64
/// bytes (a convolution's window row of 3 elements, packed once per row) in one masked
/// AVX-512 load and store where the host has them, not element by element.
///
/// # Safety
/// As [`gather`].
#[inline(always)]
unsafe fn copy_run<T: Copy>(s: *const T, ss: isize, d: *mut T, dd: isize, n: usize) {
    let size = size_of::<T>();
    if ss == 1 && dd == 1 {
        #[cfg(target_arch = "x86_64")]
        if n * size <= 64 && size.is_multiple_of(4) && crate::gemm::has_own_kernel() {
            // SAFETY: both runs are inside their buffers (caller) and do not overlap; the
            // host has AVX-512 F.
            unsafe { copy_short(s.cast(), d.cast(), n * size / 4) };
            return;
        }
        // SAFETY: both runs are inside their buffers (caller) and do not overlap; bytes need
        // no alignment.
        unsafe { std::ptr::copy_nonoverlapping(s.cast::<u8>(), d.cast::<u8>(), n * size) };
        return;
    }
    for t in 0..n as isize {
        // SAFETY: inside the buffers (caller).
        unsafe { d.offset(t * dd).write_unaligned(s.offset(t * ss).read_unaligned()) }
    }
}

/// Copy `words` ≤ 16 four-byte words from `s` to `d` with one masked load and store (lanes
/// past `words` are neither read nor written).
///
/// # Safety
/// The host has AVX-512 F; `s` is valid for reads and `d` for writes of `words` words (either
/// possibly unaligned), not overlapping.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn copy_short(s: *const i32, d: *mut i32, words: usize) {
    use std::arch::x86_64::{_mm512_mask_storeu_epi32, _mm512_maskz_loadu_epi32};
    let mask = (((1u32 << words) - 1) & 0xffff) as u16;
    let mask = if words >= 16 { u16::MAX } else { mask };
    // SAFETY: masked-off lanes are not accessed (AVX-512 suppresses their faults); the
    // `words` lanes kept are inside both runs (caller).
    unsafe {
        let v = _mm512_maskz_loadu_epi32(mask, s);
        _mm512_mask_storeu_epi32(d, mask, v);
    }
}

/// The body of both entry points.
///
/// # Safety
/// As [`jjt_contract_f32`].
unsafe fn contract<T: Elem>(
    d: *const Descriptor,
    a: *const T,
    b: *const T,
    c: *mut T,
    threads: usize,
) {
    // SAFETY: the descriptor is owned by the compiled handle whose code is running.
    let desc = unsafe { &*d };
    let (a, b) = if desc.swapped { (b, a) } else { (a, b) };
    // `call_raw` can pass buffers at any address: the matrix multiply needs aligned ones, and
    // the dot loops read direct operands as slices.
    let aligned = a.is_aligned() && b.is_aligned() && c.is_aligned();
    let base = Part {
        d,
        mm: desc.gemm && aligned,
        a_direct: desc.a_direct.filter(|_| aligned),
        b_direct: desc.b_direct.filter(|_| aligned),
        a_k_outer: desc.a_k_outer && desc.gemm && aligned,
        a,
        b,
        i: (0, 0),
        j: (0, 0),
        blocks: (0, 0),
        out: Out { p: c, rs: 0, cs: 0 },
        call: crate::gemm::new_call(),
    };
    // The dot loops need K-contiguous direct operands.
    let base = if base.mm {
        base
    } else {
        Part {
            a_direct: base.a_direct.filter(|&(_, cs)| cs == 1 || desc.k == 1),
            b_direct: base.b_direct.filter(|&(rs, _)| rs == 1 || desc.k == 1),
            ..base
        }
    };
    // SAFETY: forwarded.
    unsafe { products(base, c, (0, desc.products), threads.max(1)) };
    if !desc.replicas.is_empty() {
        // SAFETY: the computed block (replica index 0) and each copy are inside the output.
        unsafe { replicate(desc, c) };
    }
}

/// Copy the output block computed at replica index 0 along the replica axes.
///
/// # Safety
/// `c` is the output of the call `d` describes.
unsafe fn replicate<T: Copy>(d: &Descriptor, c: *mut T) {
    let mut block: Vec<(usize, isize, isize)> = d.outer.iter().map(|l| (l.n, l.c, l.c)).collect();
    block.push((d.m, d.rsc, d.rsc));
    block.push((d.n, d.csc, d.csc));
    block.retain(|x| x.0 > 1);
    // Walk the block along memory.
    block.sort_by_key(|x| std::cmp::Reverse(x.1.unsigned_abs()));
    let count: usize = d.replicas.iter().map(|r| r.0).product();
    for q in 1..count {
        let (mut rest, mut off) = (q, 0isize);
        for &(n, st) in d.replicas.iter().rev() {
            off += (rest % n) as isize * st;
            rest /= n;
        }
        // SAFETY: replica q's block is a disjoint part of the output (C's axes do not overlap).
        unsafe { copy_box(c.cast_const(), c.wrapping_offset(off), &block) };
    }
}

/// The runtime contraction in f32: `c = contract(a, b)` as descriptor `d` says, on up to
/// `threads` threads.
///
/// # Safety
/// `d` points to a live [`Descriptor`] planned for f32 from the step whose operands are `a`
/// and `b` and whose output is `c` (each the view's base address plus its offset); the buffers
/// hold every element the step's views address, and `c` overlaps neither `a` nor `b`.
pub(crate) unsafe extern "C" fn jjt_contract_f32(
    d: *const Descriptor,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    threads: usize,
) {
    let (dd, c) = (SendPtr(d.cast_mut()), SendPtr(c));
    // SAFETY: forwarded from the caller. A panic stops at `guard` (see `pool`).
    crate::pool::guard(move || unsafe { contract(dd.get().cast_const(), a, b, c.get(), threads) })
}

/// The runtime contraction in f64.
///
/// # Safety
/// As [`jjt_contract_f32`], for f64.
pub(crate) unsafe extern "C" fn jjt_contract_f64(
    d: *const Descriptor,
    a: *const f64,
    b: *const f64,
    c: *mut f64,
    threads: usize,
) {
    let (dd, c) = (SendPtr(d.cast_mut()), SendPtr(c));
    // SAFETY: forwarded from the caller. A panic stops at `guard` (see `pool`).
    crate::pool::guard(move || unsafe { contract(dd.get().cast_const(), a, b, c.get(), threads) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `offsets` (an odometer from the first index) gives every index's offset as its
    /// definition does (each index's digits by division), on index spaces of one to nine
    /// axes (nine: past the odometer's eight, the divisions themselves), negative and zero
    /// strides, extents of one, and ranges starting and ending inside an axis.
    #[test]
    fn offsets_match_their_definition() {
        let spaces: &[&[(usize, isize)]] = &[
            &[(7, 3)],
            &[(3, 100), (1, 5), (4, -7), (5, 1)],
            &[(2, 0), (3, 11), (6, 2)],
            &[(2, 1); 9],
        ];
        for axes in spaces {
            let total: usize = axes.iter().map(|a| a.0).product();
            for r in [(0, total), (1, total - 1), (total / 3, total / 2 + 1), (2, 2)] {
                let mut got = Vec::new();
                offsets(axes, r, &mut got);
                let want: Vec<isize> = (r.0..r.1)
                    .map(|mut i| {
                        let mut off = 0;
                        for &(n, st) in axes.iter().rev() {
                            off += (i % n) as isize * st;
                            i /= n;
                        }
                        off
                    })
                    .collect();
                assert_eq!(got, want, "{axes:?} {r:?}");
            }
        }
    }

    #[test]
    fn blocks_are_boxes_covering_k_once() {
        // K = 32 × 512: blocks of KB / 512 rows of the first axis (KB = 1024: 16 blocks of
        // 2 × 512).
        let ks = [KAxis { n: 32, a: 512, b: 1 }, KAxis { n: 512, a: 1, b: 512 }];
        let bl = Blocks::new(&ks);
        assert_eq!((bl.count, bl.split, bl.q), (32 * 512 / KB, 0, KB / 512));
        let mut seen = vec![0u8; 32 * 512];
        for b in 0..bl.count {
            let mut bx = Vec::new();
            let (oa, _) = bl.get(&ks, b, &mut bx);
            for i in 0..bx[0].n {
                for j in 0..bx[1].n {
                    seen[(oa + i as isize * 512 + j as isize) as usize] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&s| s == 1));
        // One long axis: ranges of KB along it, the last short.
        let long = [KAxis { n: 10 * KB + 7, a: 1, b: 1 }];
        let bl = Blocks::new(&long);
        assert_eq!((bl.count, bl.q, bl.per_lead), (11, KB, 11));
        let mut bx = Vec::new();
        bl.get(&long, 10, &mut bx);
        assert_eq!(bx[0].n, 7);
    }

    #[test]
    fn split_point_is_the_largest_power_of_two_below() {
        let got: Vec<usize> = (2..10).map(split_point).collect();
        assert_eq!(got, [1, 2, 2, 4, 4, 4, 4, 8]);
    }
}
