//! The matrix multiply that the runtime contraction (`contract`) calls for each block of a
//! large contraction, and its thresholds.
//!
//! A contraction takes the matrix-multiply path when one product's M·N·K reaches
//! [`GEMM_THRESHOLD`] (or all its products together reach [`BATCHED_GEMM_TOTAL`]) and its M
//! and N reach [`GEMM_MIN_MN`] (whatever its strides: operands
//! whose axes do not chain are packed); smaller ones are emitted inline with SIMD, or run in
//! the runtime contraction's vectorised dot loops when no inline vector form applies. The
//! thresholds are measured with `cargo run --release -p jjt-jit --example gemm_threshold`.
//!
//! **Which matrix multiply.** f32 on a host with AVX-512 runs this module's own kernel
//! ([`has_own_kernel`]); f64, and f32 elsewhere, the `matrixmultiply` crate. The own kernel
//! exists because of shapes that dominate kernels of the zoo, where `matrixmultiply` (16×16
//! tiles, both operands always packed, K in blocks of 256 whose sums are added) ran at half
//! the machine's speed. Measured on this machine (AMD EPYC with AVX-512, f32, 1 thread,
//! median µs of 9 rounds, `cargo run --release -p jjt-jit --example gemm_kernels`):
//!
//! | M×K×N, layout | matrixmultiply | own | ratio |
//! |---|---|---|---|
//! | 160×1024×160, A·Bᵀ, rows 16384 apart (a block of a Gram product of Jacobians) | 793 | 555 | 1.43 |
//! | 40960×576×32 (a convolution's patches times its kernel) | 41309 | 17722 | 2.33 |
//! | 80 products 512×32×128, Aᵀ·B (per-example Jacobians times inputs) | 6134 | 6781 | 0.90 |
//! | 10×1024×160, A·Bᵀ (a head of 10 outputs) | 245 | 45 | 5.44 |
//! | 512×256×512 | 1279 | 1253 | 1.02 |
//! | 1024×576×1024, A·Bᵀ (a patch Gram product) | 13070 | 13515 | 0.97 |
//!
//! The machine is shared: between runs of the example the ratios moved by up to ±0.15.
//! Inside jjt (`jjt bench` on the zoo, two threads, alternating runs with each matrix
//! multiply) the CNN's call went from 144–150 to 123–134 ms, the transformer's from 134–182
//! to 106–115 ms and the mixer's from 39–42 to 26–31 ms (before the copies of rows and the
//! larger packing chunks that followed).
//! The choice of library is by host, and the choice of kernel by layout, K, the whole
//! product's M and N and the host's CPU vendor ([`dot_factor`]), never by the part of it a
//! call computes, so that every part a thread
//! computes follows the whole product's summation order.
//!
//! Two kernels. When both operands are contiguous along K (packed operands, Gram products)
//! and K is long, the dot kernel needs no packing at all: tiles of 4 rows of A by 6 columns
//! of B, each of the 24 products a vector along K (ten loads feed 24 FMAs), the lanes of
//! sixteen accumulators at a time reduced together at the end. Otherwise tiles of 8×32 whose eight
//! broadcasts and two loads feed sixteen FMAs, A read in place when B is at most two tiles
//! wide (packing A would cost as much as multiplying it). Operands contiguous along K (a
//! Gram product below the dot kernel's K, `[320,64]·[320,64]ᵀ` in a deep narrow network) are
//! packed by 16×16 transposes in registers rather than an element at a time: 133 → 126 µs on
//! that product (one thread), about 0.07 → 0.065 ms inside the deep MLP's kernel (two
//! threads). Both crates `gemm` and `matrixmultiply` were measured earlier for this role (the
//! `gemm` crate won only on small and skinny products, below the thresholds here).

/// Multiply-adds from which a contraction calls the matrix multiply instead of inline loops.
pub const GEMM_THRESHOLD: usize = 1 << 15;

/// The smaller of M and N from which the matrix multiply pays off: below it the inline loops
/// (vectorised over the output or along K) win, because the library packs both operands.
/// Measured with `cargo run --release -p jjt-jit --example gemm_threshold` on this machine
/// (Intel Xeon with AVX-512, 2 cores, f32, median µs inline / through the runtime contraction's
/// matrix multiply, 2 threads):
///
/// | M×K×N | inline | matrix multiply |
/// |---|---|---|
/// | 5×10000×5 | 76 | (inline: M, N < 8) |
/// | 8×512×8 | 4.0 | 4.7 |
/// | 16×512×16 | 8.0 | 3.6 |
/// | 32×64×32 | 4.3 | 1.4 |
/// | 64×64×64 | 19.3 | 4.1 |
/// | 32×784×512 | 1212 | 209 |
/// | 320×512×512 | 5258 | 1026 |
///
/// At 8 the two are within 20 %; from 16 the matrix multiply wins by 2× and more.
pub const GEMM_MIN_MN: usize = 8;

/// Multiply-adds from which a matrix multiply is split across threads. Handing a part to a
/// helper that is spinning (as it is for 2 ms after its last part) costs about a
/// microsecond; median µs of one product `[M,K]·[K,N]` on this machine
/// (`jjt bench` of `func f(a: f32[M,K], b: f32[K,N]) -> f32[M,N] { return a @ b }`,
/// `--reps 3000`, `--threads 1` and `2`):
///
/// | M×K×N | multiply-adds | 1 thread | 2 threads |
/// |---|---|---|---|
/// | 64×64×64 | 2¹⁸ | 5.6 | 4.0 |
/// | 128×64×64 | 2¹⁹ | 10.5 | 6.5 |
/// | 320×64×64 | 1.3·10⁶ | 26 | 14 |
/// | 640×64×64 | 2.6·10⁶ | 54 | 33 |
/// | 128×128×128 | 2²¹ | 44 | 28 |
///
/// From 2¹⁸ the split saves a quarter or more (a deep narrow network's backward products
/// through its 64×64 weights are 2.6·10⁶ each).
pub const PAR_THRESHOLD: usize = 1 << 18;

/// The smallest extent (rows of A or columns of B) a thread's share is cut to: a multiple of
/// the micro-kernels' register tiles, so a split never leaves a ragged tile on both sides.
pub(crate) const PAR_GRAIN: usize = 32;

/// [`PAR_GRAIN`] for a cut between rows: two register tiles of the tile kernel (and the
/// pairs of panels it packs together), four of the dot kernel. The CNN's 160×160 Gram
/// product of second-layer Jacobians (22 blocks of K, `jjt bench --profile`) split 96/64 in
/// grains of 32, 80/80 in grains of 16: 4.2 → 3.7 ms (three alternating runs of 20 calls).
pub(crate) const PAR_GRAIN_ROWS: usize = 16;

/// Multiply-adds of all the products of a batched contraction from which products below
/// [`GEMM_THRESHOLD`] call the matrix multiply too, when each has at least
/// [`BATCHED_GEMM_MIN`]: the call's overhead is then repaid product by product, and the
/// products are shared among threads. On the zoo's embedding model (`jjt bench --profile`)
/// 320 products of 32×64×10 took 4.9 ms inline (vectors of four over the 10 outputs, a scalar
/// tail) and 0.63 ms so; no other contraction of the zoo changed path.
pub const BATCHED_GEMM_TOTAL: usize = 1 << 20;

/// The fewest multiply-adds per product of a batched contraction that calls the matrix
/// multiply ([`BATCHED_GEMM_TOTAL`]).
pub const BATCHED_GEMM_MIN: usize = 1 << 12;

/// A matrix given to [`matmul_f32`]: its elements and the strides (in elements) of its rows
/// and columns, which may be zero or negative.
#[derive(Clone, Copy, Debug)]
pub struct Strided<'a> {
    /// The elements every (row, column) the extents address must fall in.
    pub data: &'a [f32],
    /// Elements from one row to the next.
    pub rs: isize,
    /// Elements from one column to the next.
    pub cs: isize,
}

/// Why [`matmul_f32`] refused its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatmulError {
    /// Operand `which` ("a", "b" or "c") addresses an element outside its slice.
    OutOfBounds {
        /// Which operand.
        which: &'static str,
    },
}

impl std::fmt::Display for MatmulError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OutOfBounds { which } => {
                write!(
                    f,
                    "matrix {which}: its extents and strides address elements outside its slice"
                )
            }
        }
    }
}

impl std::error::Error for MatmulError {}

/// Whether every element of an r×c matrix with strides (rs, cs) lies in a slice of `len`
/// elements (an empty matrix always does).
fn fits(r: usize, c: usize, rs: isize, cs: isize, len: usize) -> bool {
    if r == 0 || c == 0 {
        return true;
    }
    let (mut lo, mut hi) = (0isize, 0isize);
    for (n, s) in [(r, rs), (c, cs)] {
        let Some(far) = isize::try_from(n - 1).ok().and_then(|n| n.checked_mul(s)) else {
            return false;
        };
        if far < 0 {
            lo = lo.saturating_add(far);
        } else {
            hi = hi.saturating_add(far);
        }
    }
    lo >= 0 && (hi as usize) < len
}

/// `c = a·b` (a m×k, b k×n, c m×n) with the matrix multiply the runtime contraction calls for
/// f32 on this host: the own kernels ([`has_own_kernel`]) or `matrixmultiply`. For benchmarks
/// and tests of the kernels themselves; compiled code reaches them through contraction steps.
///
/// # Errors
/// [`MatmulError::OutOfBounds`] when an operand's extents and strides address an element
/// outside its slice.
#[allow(clippy::too_many_arguments)]
pub fn matmul_f32(
    m: usize,
    k: usize,
    n: usize,
    a: Strided<'_>,
    b: Strided<'_>,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
) -> Result<(), MatmulError> {
    matmul_f32_part(m, k, n, a, b, c, rsc, csc, (m, n))
}

/// [`matmul_f32`] for a block of rows and columns of a larger product of `whole` = (M, N)
/// rows and columns, as a thread computes its part: the kernel (and so the summation order)
/// is the one the whole product would use, so the parts' bits are the whole's.
///
/// # Errors
/// As [`matmul_f32`].
#[allow(clippy::too_many_arguments)]
pub fn matmul_f32_part(
    m: usize,
    k: usize,
    n: usize,
    a: Strided<'_>,
    b: Strided<'_>,
    c: &mut [f32],
    rsc: isize,
    csc: isize,
    whole: (usize, usize),
) -> Result<(), MatmulError> {
    if !fits(m, k, a.rs, a.cs, a.data.len()) {
        return Err(MatmulError::OutOfBounds { which: "a" });
    }
    if !fits(k, n, b.rs, b.cs, b.data.len()) {
        return Err(MatmulError::OutOfBounds { which: "b" });
    }
    if !fits(m, n, rsc, csc, c.len()) {
        return Err(MatmulError::OutOfBounds { which: "c" });
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    // SAFETY: every addressed element is inside its slice (checked above); `c` is borrowed
    // mutably, so it overlaps neither `a` nor `b`; the pointers are the slices' (aligned).
    unsafe {
        <f32 as crate::contract::Elem>::mm(
            m,
            k,
            n,
            a.data.as_ptr(),
            a.rs,
            a.cs,
            b.data.as_ptr(),
            b.rs,
            b.cs,
            c.as_mut_ptr(),
            rsc,
            csc,
            whole,
            Sharing::NONE,
        )
    };
    Ok(())
}

/// Whether [`matmul_f32_part`] of a product of `whole` (M, N) rows and columns runs in the dot
/// kernel (see the module's summation orders), given k and the layout: A's column stride
/// `a_cs` and B's row stride `b_rs` (both 1 when both are contiguous along k). False on a host
/// without the own kernels.
pub fn uses_dot_kernel(whole: (usize, usize), k: usize, a_cs: isize, b_rs: isize) -> bool {
    has_own_kernel() && uses_dot(whole, k, a_cs, b_rs)
}

// ---------------------------------------------------------------------------------------------
// The f32 kernel.

/// Rows of A per register tile of [`sgemm`] (each broadcast against a row of B's tile).
pub(crate) const MR: usize = 8;
/// Columns of B per register tile of [`sgemm`]: two AVX-512 vectors of f32.
const NR: usize = 32;
/// Elements of K per packed block, when B spans more than one tile.
const KC: usize = 256;
/// Elements of K per block when A is read in place (B at most two tiles wide): B's block
/// (at most KC_NARROW × 64 f32, 256 KiB) stays in L2 and c is written once.
const KC_NARROW: usize = 1024;
/// Tiles of B (columns of c over [`NR`]) from which A is packed rather than read in place.
const PACK_A_MIN_TILES: usize = 3;
/// The shortest k from which products whose operands are both contiguous along k run in the
/// dot kernel (`sgemm_dot`); below it the horizontal sums at the end of each tile cost more
/// than packing. Measured with the two kernels side by side (f32, one thread, GFLOP/s of
/// tile / dot kernel): 640×k×288 at k = 256: 94 / 76, 512: 93 / 95, 768: 72 / 85;
/// 160×k×160 at k = 128: 82 / 60, 512: 83 / 89; and 10×1024×160: 24 / 77.
pub const DOT_MIN_K: usize = 512;
/// Rows of A per tile of the dot kernel.
const DOT_T: usize = 4;
/// Columns of B per tile of the dot kernel: 4·6 accumulators, 10 loads per 24 multiply-adds.
const DOT_Q: usize = 6;
/// Bytes of A's rows the dot kernel keeps in L2 while it sweeps all of B's tiles across them.
const DOT_A_BYTES: usize = 256 << 10;
/// Rows of A per packed block (a multiple of [`MR`]).
const MC: usize = 128;
/// Columns of B per packed block (a multiple of [`NR`]).
const NC: usize = 512;

/// Whether f32 matrix products on this host run this module's own kernels (it has AVX-512 F)
/// rather than `matrixmultiply`; detected once.
pub fn has_own_kernel() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

thread_local! {
    /// Each thread's packing buffer, grown to at most [`scratch_elems`] f32 and reused, and
    /// which block of B its narrow panels hold, if any ([`Packed`]).
    static PACK: std::cell::RefCell<(Vec<f32>, Option<Packed>)> =
        const { std::cell::RefCell::new((Vec::new(), None)) };
}

/// Which B a thread's packing buffer holds as a narrow product's panels: the runtime
/// contraction call (`call`, from [`new_call`]) during which it was packed, and the block's
/// address, strides and extents. Within one call the operands do not change, so a product
/// whose whole B is that block (the products along an axis B does not move on: a convolution
/// layer's patches against each output's cotangent, a shared weight against each example's
/// rows) takes the panels as they are instead of packing them again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Packed {
    call: u64,
    b: *const f32,
    rsb: isize,
    csb: isize,
    n: usize,
    k: usize,
}

/// A number no earlier runtime contraction call was given: the identity under which the
/// matrix products of one call may share packed panels of B ([`Packed`]). 0 (never returned)
/// shares nothing.
pub(crate) fn new_call() -> u64 {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// What a product shares with the products computed after it on the same thread: the
/// runtime contraction call it belongs to (`call`, [`new_call`]; 0: nothing is shared) and how
/// many consecutive products (this one included) read the same A (`a`) and the same B (`b`).
/// A narrow B packed for one product is kept for the next of the same call ([`Packed`]), and
/// the tile kernel's orientation counts its packing once per `b` (or `a`, turned) products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sharing {
    pub call: u64,
    pub a: usize,
    pub b: usize,
}

impl Sharing {
    /// Nothing shared: every product packs its own panels.
    pub(crate) const NONE: Sharing = Sharing { call: 0, a: 1, b: 1 };

    /// The same with the operands' roles exchanged.
    fn turned(self) -> Sharing {
        Sharing { a: self.b, b: self.a, ..self }
    }
}

/// Run `f` with this thread's packing buffer, grown to [`scratch_elems`] f32, given as its
/// first element aligned to a cache line (the tile kernels' A block, then B's panels).
/// `f` also gets what the narrow panels hold ([`Packed`]): a user that writes them (or the
/// buffer before them, with a wide block) must update or clear it.
#[cfg(target_arch = "x86_64")]
fn with_pack<R>(f: impl FnOnce(*mut f32, &mut Option<Packed>) -> R) -> R {
    PACK.with(|buf| {
        let (buf, held) = &mut *buf.borrow_mut();
        if buf.len() < scratch_elems() {
            buf.resize(scratch_elems(), 0.0);
        }
        let base = buf.as_mut_ptr();
        f(base.wrapping_add(base.align_offset(64)), held)
    })
}

/// Pack a narrow product's B block (`nc` columns by `kc`, at `bj`) into its panels at `pb`,
/// unless `held` says they already hold it: the same block packed earlier in the same
/// contraction call (`call` nonzero) on this thread, and it is the product's whole B
/// (`whole`: one block of columns and of K).
///
/// # Safety
/// As [`pack_b`]; `pb` is the narrow panels' place in this thread's packing buffer.
#[allow(clippy::too_many_arguments)]
unsafe fn pack_narrow_b(
    held: &mut Option<Packed>,
    call: u64,
    whole: bool,
    (nc, kc): (usize, usize),
    bj: *const f32,
    rsb: isize,
    csb: isize,
    pb: *mut f32,
) {
    let key = Packed { call, b: bj, rsb, csb, n: nc, k: kc };
    if call != 0 && whole && *held == Some(key) {
        return;
    }
    // SAFETY: forwarded from the caller.
    unsafe { pack_b(nc, kc, bj, rsb, csb, pb) };
    #[cfg(test)]
    tests::NARROW_PACKS.with(|c| c.set(c.get() + 1));
    *held = (call != 0 && whole).then_some(key);
}

/// The most f32 elements [`sgemm`]'s packing buffer holds on one thread (about 640 KiB),
/// plus the slack that aligns it to a cache line. The dot kernel's copies of A's rows fit in
/// it for the runtime contraction's blocks of K (at most 64 Ki elements for k ≤ 1024); a
/// longer k given to `matmul_f32` grows it to 4·k.
pub(crate) const fn scratch_elems() -> usize {
    let wide = MC * KC + NC * KC;
    let narrow = MR * KC_NARROW + (PACK_A_MIN_TILES - 1) * NR * KC_NARROW;
    (if wide > narrow { wide } else { narrow }) + 16
}

/// `c = a·b` for an m×k matrix `a` and a k×n matrix `b`, each element addressed by its row
/// and column strides (in elements), into the m×n matrix `c`.
///
/// **Summation order.** It depends on the layout and on k only, never on m, n or the part of
/// the product computed, so a product cut into parts by rows or columns (as threads cut it)
/// gives the bits of the whole one:
///
/// - rows of `a` and columns of `b` both contiguous along k (`csa == rsb == 1`, the layout of
///   packed operands and of Gram products of Jacobians), k ≥ [`DOT_MIN_K`], and the dot
///   kernel estimated faster for the whole product `whole` (M, N) that this call is a part of
///   (`uses_dot`): the dot kernel ([`sgemm_dot`]): sixteen lanes, lane l a chain of fused multiply-adds over the
///   p ≡ l (mod 16) in increasing order from zero (k padded with zeros to a multiple of 16),
///   then the lanes added as a halving tree (lane l + lane l+8, then +4, +2, +1). Error at
///   most (⌈k/16⌉ + 4)·u·Σ|a·b| (u the unit roundoff);
/// - otherwise one chain of fused multiply-adds over k in increasing order from zero, whatever
///   the tiling, blocks of K and packing. Error at most k·u·Σ|a·b|.
///
/// The runtime contraction keeps k ≤ its `KB`, and passes as `whole` the extents of the
/// product it cuts into blocks and parts, and as `share` what the product shares with the
/// next ones on this thread ([`Sharing`]): a narrow B packed for one product is then reused
/// by the next product that is the same block of the same call ([`Packed`]).
///
/// # Safety
/// The host has AVX-512 F ([`has_own_kernel`]); every element the extents and strides address in
/// `a`, `b` and `c` is valid (reads of `a` and `b`, reads and writes of `c`), and `c` overlaps
/// neither `a` nor `b`; under a nonzero `share.call`, no element of A or B changes between
/// this product and any other product of the same call.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sgemm(
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
    share: Sharing,
) {
    if m == 0 || n == 0 {
        return;
    }
    if uses_dot(whole, k, csa, rsb) {
        // SAFETY: forwarded; rows of a and columns of b are contiguous along k.
        unsafe { sgemm_dot(m, k, n, a, rsa, b, csb, c, rsc, csc) }
    } else {
        // SAFETY: forwarded.
        unsafe { sgemm_tiles(m, k, n, a, rsa, csa, b, rsb, csb, c, rsc, csc, share) }
    }
}

/// The tile kernel's estimated time for an m×n product in this orientation, in units of one
/// multiply-add per element of k: its padded tiles, half as much again when A is packed (B
/// three tiles wide or more; then B is packed from its columns too).
fn tile_cost(m: usize, n: usize) -> f64 {
    let area = (m.div_ceil(MR) * MR * n.div_ceil(NR) * NR) as f64;
    if n.div_ceil(NR) < PACK_A_MIN_TILES { area } else { 1.5 * area }
}

/// The longest step along K (elements) at which the tile kernel reads A where it lies beside
/// a narrow B; past it A is packed. Read in place, each index of K of a tile's rows is a new
/// line that far from the last one: `[64,784]·[784,512]` (an MLP's first layer) computed as
/// its transpose with the 784×512 weight as A (K step 512, 2 KiB) ran at 64–85 GFLOP/s, the
/// straight orientation with A packed at 112–126 (`jjt bench --threads 1`, alternating).
/// The CNN's first-layer kernel gradient reads its cotangent's channels in place 32 apart.
const IN_PLACE_MAX_K_STEP: usize = 256;

/// Whether the tile kernel reads an A whose step along K is `csa` where it lies (beside a
/// narrow B; else A is packed).
fn reads_in_place(csa: isize) -> bool {
    csa.unsigned_abs() <= IN_PLACE_MAX_K_STEP
}

/// [`tile_cost`] for an A whose step along K is `csa`: an A read in place only when
/// [`reads_in_place`], else packed (half as much again).
fn tile_cost_in(m: usize, n: usize, csa: isize) -> f64 {
    let area = (m.div_ceil(MR) * MR * n.div_ceil(NR) * NR) as f64;
    if gathers(n) && !reads_in_place(csa) { 1.5 * area } else { tile_cost(m, n) }
}

/// [`pack_b`]'s estimated time per element of k for n columns of B whose column stride is
/// `csb`, in [`tile_cost`]'s units: rows of B contiguous (`csb == 1`) are copied, about
/// [`PACK_COPY`] multiply-adds' time per element; otherwise B is transposed in registers,
/// about [`PACK_TRANSPOSE`]. Against a product's tiles it matters only for products with
/// few rows, such as 32×1024×28 with B's columns contiguous along k (channels of a
/// cotangent times 28 columns of patches, ten products, one thread,
/// `cargo run --release -p jjt-jit --example gemm_kernels`): transposing B's 28 columns
/// for each product 196 µs, computing the transpose with A's rows as B (copied) 172 µs.
fn pack_b_cost(n: usize, csb: isize) -> f64 {
    n as f64 * if csb == 1 { PACK_COPY } else { PACK_TRANSPOSE }
}

/// See [`pack_b_cost`].
const PACK_COPY: f64 = 2.0;
/// See [`pack_b_cost`].
const PACK_TRANSPOSE: f64 = 16.0;

/// The factor on [`tile_cost`] of the orientation that writes c's contiguous rows as the
/// columns of its tiles (each tile's 32 columns then go to 32 rows of c, eight elements each).
/// Measured with `jjt bench --threads 1` on `[1024,576]·[885,576]ᵀ` (`func f(a: f32[1024,576],
/// b: f32[885,576]) -> f32[1024,885] { return dot_general(a, b, contract=[[1],[1]],
/// batch=[[],[]]) }`), whose swapped orientation has 0.9 % fewer padded tiles: swapped (c
/// written by columns) 8.7 ms, straight 6.3 ms; the same shape with 896 columns, where the
/// straight orientation has fewer tiles, 6.6 ms. A swap that saves more than a quarter of the
/// tiles (a narrow B read in place) still pays.
const TRANSPOSED_STORE: f64 = 1.25;

/// The dot kernel's estimated time, as [`tile_cost`]: its padded 4×6 tiles, [`dot_factor`]
/// times each (the horizontal sums, and B's rows streamed from L2 for every four rows of A).
fn dot_cost(m: usize, n: usize, factor: f64) -> f64 {
    factor * (m.div_ceil(DOT_T) * DOT_T * n.div_ceil(DOT_Q) * DOT_Q) as f64
}

/// The [`dot_factor`] that plans and the cost model assume whatever the host (the AMD host's,
/// where the cost model's throughputs were measured), so that plans, predictions, dumps and
/// `auto`'s choice do not depend on the machine; only the kernel a product runs in at run time
/// ([`uses_dot`]) does.
const PLANNED_DOT_FACTOR: f64 = 1.3;

/// The dot kernel's cost per padded tile element against the tile kernel's, by
/// the host's CPU vendor, detected once: the two kernels' relative speed differs between the
/// two kinds of machine this project is measured on.
///
/// - AMD (EPYC, Zen 4: AVX-512 on 256-bit units): 1.3. The dot kernel's measured rates fit it
///   (`DOT_MIN_K`'s table and 40960×576×32: dot 56, tile 81 GFLOP/s; 1024×576×1024: 84 and
///   74, one thread).
/// - Others (Intel Xeon with two 512-bit FMA units): 1.6. One thread, `jjt bench` of
///   `[1024,576]·[1024,576]ᵀ`: dot 12.3 ms, tile 7.9 ms; the CNN's patch Gram product
///   (1024×576×1024 from packed patches, two threads, in the kernel) 6.9 → 5.1 ms. Alternating
///   runs of the zoo (`jjt bench`, three rounds each, median ms, 1.3 → 1.6): MLP 2.97 → 2.54,
///   transformer 44.2 → 38.6, CNN 76 → 73, mixer 10.6 → 10.4, deep MLP unchanged (its k is
///   below `DOT_MIN_K`).
///
/// A function of the host only, so every product on a host takes the same kernel for the same
/// shape and results stay bit-identical for any thread count.
pub fn dot_factor() -> f64 {
    static FACTOR: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *FACTOR.get_or_init(|| if amd_host() { 1.3 } else { 1.6 })
}

/// Whether the host's CPU vendor is AMD (`cpuid` leaf 0: "AuthenticAMD").
fn amd_host() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let r = std::arch::x86_64::__cpuid(0);
        // "Auth" "enti" "cAMD" in ebx, edx, ecx.
        r.ebx == u32::from_le_bytes(*b"Auth") && r.ecx == u32::from_le_bytes(*b"cAMD")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether a product whose whole is `whole` (M, N) runs in the dot kernel: its operands are
/// both contiguous along k, k ≥ [`DOT_MIN_K`], and the dot kernel is estimated faster than
/// the tile kernel in either orientation. A function of the whole product, of k and of the
/// layout only, so every part of a product uses the same kernel.
pub(crate) fn uses_dot(whole: (usize, usize), k: usize, csa: isize, rsb: isize) -> bool {
    uses_dot_with(whole, k, csa, rsb, dot_factor())
}

/// [`uses_dot`] as plans and the cost model assume it, with [`PLANNED_DOT_FACTOR`].
pub(crate) fn uses_dot_planned(whole: (usize, usize), k: usize, csa: isize, rsb: isize) -> bool {
    uses_dot_with(whole, k, csa, rsb, PLANNED_DOT_FACTOR)
}

fn uses_dot_with(whole: (usize, usize), k: usize, csa: isize, rsb: isize, factor: f64) -> bool {
    let (m, n) = whole;
    csa == 1
        && rsb == 1
        && k >= DOT_MIN_K
        && dot_cost(m, n, factor) < tile_cost(m, n).min(tile_cost(n, m))
}

/// [`sgemm`] in the tile kernel.
///
/// # Safety
/// As [`sgemm`].
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm_tiles(
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
    share: Sharing,
) {
    // Compute cᵀ = bᵀ·aᵀ instead when that is estimated faster (fewer padded tiles, or a
    // narrow B that lets A be read in place), or as fast and it stores rows of c contiguously.
    // An orientation that stores c's contiguous rows as columns of tiles pays
    // [`TRANSPOSED_STORE`] on its estimate. Either way each element is the same chain, so the
    // choice may depend on the part.
    let columns = csc != 1 && rsc == 1;
    // A narrow B that the next products share is packed once for all of them.
    let kept = |n: usize, shared: usize| {
        if share.call != 0 && gathers(n) && n <= NC && k <= KC_NARROW { shared.max(1) } else { 1 }
    };
    let (straight, swapped) = (
        tile_cost_in(m, n, csa) + pack_b_cost(n, csb) / kept(n, share.b) as f64,
        tile_cost_in(n, m, rsb) + pack_b_cost(m, rsa) / kept(m, share.a) as f64,
    );
    let (straight, swapped) = match (columns, csc == 1 && rsc != 1) {
        (true, _) => (straight * TRANSPOSED_STORE, swapped),
        (_, true) => (straight, swapped * TRANSPOSED_STORE),
        _ => (straight, swapped),
    };
    if swapped < straight || (swapped == straight && columns) {
        // SAFETY: the same elements, addressed with the roles of rows and columns exchanged.
        return unsafe {
            sgemm_tiles(n, k, m, b, csb, rsb, a, csa, rsa, c, csc, rsc, share.turned())
        };
    }
    if k == 0 {
        for i in 0..m as isize {
            for j in 0..n as isize {
                // SAFETY: (i, j) is inside c.
                unsafe { *c.offset(i * rsc + j * csc) = 0.0 };
            }
        }
        return;
    }
    // A is packed only when each of its panels is multiplied by at least PACK_A_MIN_TILES
    // tiles of B: packing costs about a cycle per element, a tile's use of it an eighth of a
    // cycle per tile, so with fewer tiles A is read in place (its broadcasts are scalar loads,
    // whatever its strides).
    if !gathers(n) || !reads_in_place(csa) {
        let pack = |i0: usize, mc: usize, p0: usize, kc: usize, out: *mut f32| {
            let ai = a.wrapping_offset(i0 as isize * rsa + p0 as isize * csa);
            // SAFETY: A's mc×kc block at (i0, p0) is inside a (the caller's contract);
            // `out` holds MC·KC elements (`wide`).
            unsafe { pack_a(mc, kc, ai, rsa, csa, out) }
        };
        // SAFETY: forwarded; `pack` packs A's blocks.
        return unsafe { wide((m, k, n), pack, (b, rsb, csb), (c, rsc, csc)) };
    }
    let kcb = KC_NARROW;
    with_pack(|pa, held| {
        // A ragged tile's rows (MR×kcb), then B's panels.
        let pb = pa.wrapping_add(MR * kcb);
        let one_block = n <= NC && k <= kcb;
        for j0 in (0..n).step_by(NC) {
            let nc = (n - j0).min(NC);
            for p0 in (0..k).step_by(kcb) {
                let kc = (k - p0).min(kcb);
                let bj = b.wrapping_offset(p0 as isize * rsb + j0 as isize * csb);
                // SAFETY: B's block is inside b; the packed panels (nc rounded up to NR, by
                // kc) fit after A's rows in the buffer (`scratch_elems`).
                unsafe { pack_narrow_b(held, share.call, one_block, (nc, kc), bj, rsb, csb, pb) };
                for jt in 0..nc.div_ceil(NR) {
                    for it in 0..m.div_ceil(MR) {
                        let (i, j) = (it * MR, j0 + jt * NR);
                        let tile = Tile::at(c, rsc, csc, (i, j), (m, n), p0 == 0);
                        let b_panel = pb.wrapping_add(jt * NR * kc);
                        let a_rows = a.wrapping_offset(i as isize * rsa + p0 as isize * csa);
                        // SAFETY: the tile's rows and columns are inside c; A's mr rows in
                        // place; B's panel kc×NR. A ragged tile is packed first so the kernel
                        // never reads past A's last row.
                        unsafe {
                            if tile.mr == MR {
                                let a = InA::<false> { a: a_rows, ars: rsa, acs: csa };
                                kernel(kc, a, b_panel, tile)
                            } else {
                                pack_a(tile.mr, kc, a_rows, rsa, csa, pa);
                                kernel(
                                    kc,
                                    InA::<true> { a: pa, ars: 1, acs: MR as isize },
                                    b_panel,
                                    tile,
                                )
                            }
                        }
                    }
                }
            }
        }
    });
}

/// The tile kernel for a B three tiles wide or more: blocks of MC rows of A by KC of K packed
/// by `pack_a(i0, mc, p0, kc, out)` into panels of MR rows, K outer (as [`pack_a`] lays
/// them, zero rows past the block), against B's blocks of NC columns packed by [`pack_b`].
/// Each element is one chain of fused multiply-adds over k in increasing order from zero.
///
/// # Safety
/// The host has AVX-512 F; `pack_a` writes the block's panels (at most MC·KC elements) to
/// `out`; B's k×n block and c's m×n block are valid (c for reads and writes, overlapping
/// neither operand).
#[cfg(target_arch = "x86_64")]
unsafe fn wide(
    (m, k, n): (usize, usize, usize),
    pack_a_block: impl Fn(usize, usize, usize, usize, *mut f32),
    (b, rsb, csb): (*const f32, isize, isize),
    (c, rsc, csc): (*mut f32, isize, isize),
) {
    with_pack(|pa, held| {
        // A's packed block first (at most MC×KC), then B's, over the narrow panels.
        *held = None;
        let pb = pa.wrapping_add(MC * KC);
        for j0 in (0..n).step_by(NC) {
            let nc = (n - j0).min(NC);
            for p0 in (0..k).step_by(KC) {
                let kc = (k - p0).min(KC);
                let bj = b.wrapping_offset(p0 as isize * rsb + j0 as isize * csb);
                // SAFETY: B's block is inside b; the packed panels (nc rounded up to NR, by
                // kc) fit after A's block in the buffer (`scratch_elems`).
                unsafe { pack_b(nc, kc, bj, rsb, csb, pb) };
                for i0 in (0..m).step_by(MC) {
                    let mc = (m - i0).min(MC);
                    pack_a_block(i0, mc, p0, kc, pa);
                    for jt in 0..nc.div_ceil(NR) {
                        for it in 0..mc.div_ceil(MR) {
                            let (i, j) = (i0 + it * MR, j0 + jt * NR);
                            let tile = Tile::at(c, rsc, csc, (i, j), (m, n), p0 == 0);
                            let a = InA::<true> {
                                a: pa.wrapping_add(it * MR * kc),
                                ars: 1,
                                acs: MR as isize,
                            };
                            // SAFETY: the tile's rows and columns are inside c; A's packed
                            // panel is MR×kc (zero rows past m), B's kc×NR.
                            unsafe { kernel(kc, a, pb.wrapping_add(jt * NR * kc), tile) };
                        }
                    }
                }
            }
        }
    });
}

/// Whether [`sgemm_gathered`] computes an n-column product: B at most two tiles wide, the
/// products whose A the tile kernel reads in place rather than packing it.
pub(crate) fn gathers(n: usize) -> bool {
    n.div_ceil(NR) < PACK_A_MIN_TILES
}

/// An m×k matrix read where it lies through offsets: `A[i, p] = a[rows[i] + koff[p]]`.
#[derive(Clone, Copy)]
pub(crate) struct Offsets<'a, T> {
    /// The element every offset counts from.
    pub a: *const T,
    /// Each row's offset (m of them).
    pub rows: &'a [isize],
    /// Each K index's offset (k of them).
    pub koff: &'a [isize],
}

/// [`sgemm`]'s tile kernel with A read where it lies ([`Offsets`]), for an operand whose rows
/// or K axes do not collapse to one stride each (a convolution's patches, its window's rows
/// one image row apart; a cotangent's channels and positions): for a B at most two tiles wide
/// ([`gathers`]) the kernel reads A's rows in place, for a wider one its blocks are packed
/// from the offsets ([`pack_gathered`]). Each element of c is the same chain of fused multiply-adds over k, in increasing
/// order from zero, as [`sgemm`] computes when it does not take the dot kernel: the bits of
/// packing A and calling it, without the copy.
///
/// # Safety
/// The host has AVX-512 F; every `a.a.offset(rows[i] + koff[p])` is valid to read; B's k×n
/// block (its strides `rsb`, `csb`) is valid; c's m×n block is valid for reads and writes and
/// overlaps neither. `share` as for [`sgemm`].
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn sgemm_gathered(
    a: Offsets<'_, f32>,
    n: usize,
    (b, rsb, csb): (*const f32, isize, isize),
    (c, rsc, csc): (*mut f32, isize, isize),
    share: Sharing,
) {
    let Offsets { a, rows, koff } = a;
    let (m, k) = (rows.len(), koff.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for i in 0..m as isize {
            for j in 0..n as isize {
                // SAFETY: (i, j) is inside c.
                unsafe { *c.offset(i * rsc + j * csc) = 0.0 };
            }
        }
        return;
    }
    if !gathers(n) {
        let pack = |i0: usize, mc: usize, p0: usize, kc: usize, out: *mut f32| {
            let (rows, koff) = (&rows[i0..i0 + mc], &koff[p0..p0 + kc]);
            // SAFETY: every row's element at every K offset is valid (the caller's
            // contract); `out` holds MC·KC elements (`wide`).
            unsafe { pack_gathered(a, rows, koff, out) }
        };
        // SAFETY: forwarded; `pack` packs A's blocks from its offsets.
        return unsafe { wide((m, k, n), pack, (b, rsb, csb), (c, rsc, csc)) };
    }
    let kcb = KC_NARROW;
    with_pack(|pa, held| {
        // A ragged tile's rows (MR×kcb), then B's panels.
        let pb = pa.wrapping_add(MR * kcb);
        let one_block = n <= NC && k <= kcb;
        for j0 in (0..n).step_by(NC) {
            let nc = (n - j0).min(NC);
            for p0 in (0..k).step_by(kcb) {
                let kc = (k - p0).min(kcb);
                let bj = b.wrapping_offset(p0 as isize * rsb + j0 as isize * csb);
                // SAFETY: B's block is inside b; its panels (nc rounded up to NR, by kc) fit
                // after A's ragged rows in the buffer (`scratch_elems`).
                unsafe { pack_narrow_b(held, share.call, one_block, (nc, kc), bj, rsb, csb, pb) };
                for jt in 0..nc.div_ceil(NR) {
                    for it in 0..m.div_ceil(MR) {
                        let (i, j) = (it * MR, j0 + jt * NR);
                        let tile = Tile::at(c, rsc, csc, (i, j), (m, n), p0 == 0);
                        let mr = tile.mr;
                        let b_panel = pb.wrapping_add(jt * NR * kc);
                        let ko = &koff[p0..p0 + kc];
                        if mr == MR {
                            let a = Gathered {
                                rows: std::array::from_fn(|r| a.wrapping_offset(rows[i + r])),
                                koff: ko.as_ptr(),
                            };
                            // SAFETY: the tile's rows and columns are inside c; A's MR rows
                            // at these offsets are valid (caller); B's panel is kc×NR.
                            unsafe { kernel(kc, a, b_panel, tile) };
                        } else {
                            // A ragged tile: its rows copied into a packed panel, zero rows
                            // past the last, as `sgemm_tiles` packs one.
                            for (p, &o) in ko.iter().enumerate() {
                                for r in 0..MR {
                                    // SAFETY: row i + r < m at offset o is valid (caller); the
                                    // panel holds MR·kcb elements.
                                    unsafe {
                                        let x =
                                            if r < mr { *a.offset(rows[i + r] + o) } else { 0.0 };
                                        *pa.add(p * MR + r) = x;
                                    }
                                }
                            }
                            let a = InA::<true> { a: pa, ars: 1, acs: MR as isize };
                            // SAFETY: as above, A from the panel just packed.
                            unsafe { kernel(kc, a, b_panel, tile) };
                        }
                    }
                }
            }
        }
    });
}

/// A register tile's place in c: its first element, strides, valid rows and columns, and
/// whether this is the first block of K (c is then written, not read).
#[derive(Clone, Copy)]
struct Tile {
    c: *mut f32,
    rsc: isize,
    csc: isize,
    mr: usize,
    nr: usize,
    first: bool,
}

impl Tile {
    /// The tile at row `i`, column `j` of an m×n product into c (strides `rsc`, `csc`), on
    /// the first block of K or not: its valid rows and columns clipped to the product.
    #[allow(clippy::too_many_arguments)]
    fn at(
        c: *mut f32,
        rsc: isize,
        csc: isize,
        (i, j): (usize, usize),
        (m, n): (usize, usize),
        first: bool,
    ) -> Tile {
        Tile {
            c: c.wrapping_offset(i as isize * rsc + j as isize * csc),
            rsc,
            csc,
            mr: (m - i).min(MR),
            nr: (n - j).min(NR),
            first,
        }
    }
}

/// Packs the rows at offsets `rows` (at most MC) over the K offsets `koff` from `a` into
/// panels of MR rows, K outer, as [`pack_a`] lays them (zero rows past the last). A panel
/// whose MR rows are consecutive elements (a cotangent's channels, the rows of a K-outer
/// operand) is copied MR elements at a time, any other one an element at a time.
///
/// # Safety
/// Every `a.offset(rows[i] + koff[p])` is valid to read; `out` is valid for
/// ⌈rows/MR⌉·MR·koff elements.
unsafe fn pack_gathered(a: *const f32, rows: &[isize], koff: &[isize], out: *mut f32) {
    let (m, kc) = (rows.len(), koff.len());
    for t in 0..m.div_ceil(MR) {
        let (i, o) = (t * MR, out.wrapping_add(t * MR * kc));
        let run = i + MR <= m && (1..MR).all(|r| rows[i + r] == rows[i] + r as isize);
        for (p, &ko) in koff.iter().enumerate() {
            if run {
                // SAFETY: the MR rows from i are consecutive elements at rows[i] + ko, each
                // valid; the panel's column p is MR elements, disjoint from A.
                unsafe { std::ptr::copy_nonoverlapping(a.offset(rows[i] + ko), o.add(p * MR), MR) };
                continue;
            }
            for r in 0..MR {
                // SAFETY: row i + r < m at offset ko is valid; the panel holds MR·kc.
                unsafe {
                    *o.add(p * MR + r) = if i + r < m { *a.offset(rows[i + r] + ko) } else { 0.0 }
                };
            }
        }
    }
}

/// Packs m ≤ MC rows of A's block (kc elements of K) into panels of MR rows, K outer: panel
/// `t` holds `a[t·MR + r][p]` at `t·MR·kc + p·MR + r`, rows past m zero.
///
/// # Safety
/// A's m×kc block is valid to read; `out` is valid for ⌈m/MR⌉·MR·kc elements.
unsafe fn pack_a(m: usize, kc: usize, a: *const f32, rsa: isize, csa: isize, out: *mut f32) {
    // Rows contiguous along K (a Gram product's operand, or a narrow product's last rows):
    // two panels at a time, in 16×16 blocks transposed in registers, instead of an element
    // at a time. In a ragged pair the rows past m repeat row m − 1 in the transpose (valid
    // memory; a second panel past the buffer goes to a scratch row) and are then zeroed.
    let mut first = 0;
    if csa == 1 && rsa != 1 {
        let pairs = m.div_ceil(2 * MR);
        let mut spare = [0f32; MR];
        let spare = spare.as_mut_ptr();
        for t in 0..pairs {
            let r0 = t * 2 * MR;
            let rows: [*const f32; 16] =
                std::array::from_fn(|r| a.wrapping_offset((r0 + r).min(m - 1) as isize * rsa));
            let lo = out.wrapping_add(2 * t * MR * kc);
            let hi = (r0 + MR < m).then(|| out.wrapping_add((2 * t + 1) * MR * kc));
            // SAFETY: the 16 rows (each below m) are inside A's block for p < kc; the panels
            // hold MR·kc each, and a second panel past m's writes to `spare` (MR elements);
            // this module's kernels run only on hosts with AVX-512 F.
            unsafe {
                transpose_rows(kc, rows, |p| {
                    (lo.wrapping_add(p * MR), hi.map_or(spare, |h| h.wrapping_add(p * MR)))
                })
            };
            let valid = m - r0;
            if valid < 2 * MR {
                for (panel, from) in [(lo, 0), (hi.unwrap_or(spare), MR)] {
                    let keep = valid.saturating_sub(from).min(MR);
                    if keep == MR || panel == spare {
                        continue;
                    }
                    for p in 0..kc {
                        // SAFETY: rows keep..MR of the panel's column p.
                        unsafe { std::ptr::write_bytes(panel.add(p * MR + keep), 0, MR - keep) };
                    }
                }
            }
        }
        first = 2 * pairs;
    }
    for t in first..m.div_ceil(MR) {
        let o = out.wrapping_add(t * MR * kc);
        if rsa == 1 && (t + 1) * MR <= m {
            // A panel's rows are contiguous for each p: MR elements at a time.
            for p in 0..kc {
                // SAFETY: column p's MR rows from t·MR are inside A's block; the panel's
                // column p is MR elements, disjoint from A.
                unsafe {
                    let src = a.offset((t * MR) as isize + p as isize * csa);
                    std::ptr::copy_nonoverlapping(src, o.add(p * MR), MR)
                }
            }
            continue;
        }
        for r in 0..MR {
            let i = t * MR + r;
            let row = a.wrapping_offset(i as isize * rsa);
            for p in 0..kc {
                // SAFETY: (i, p) is inside A's block when i < m; the panel holds MR·kc.
                unsafe {
                    *o.add(p * MR + r) = if i < m { *row.offset(p as isize * csa) } else { 0.0 }
                };
            }
        }
    }
}

/// Packs n ≤ NC columns of B's block (kc elements of K) into panels of NR columns, K outer:
/// panel `t` holds `b[p][t·NR + q]` at `t·NR·kc + p·NR + q`, columns past n zero.
///
/// # Safety
/// B's kc×n block is valid to read; `out` is valid for ⌈n/NR⌉·NR·kc elements.
unsafe fn pack_b(n: usize, kc: usize, b: *const f32, rsb: isize, csb: isize, out: *mut f32) {
    // Columns contiguous along K (a Gram product's operand, or a narrow B such as 28 columns
    // of patches): every panel in 16×16 blocks transposed in registers, instead of an
    // element at a time. In a ragged panel the columns past n repeat column n − 1 in the
    // transpose (valid memory) and are then overwritten with zeros.
    let mut first = 0;
    if rsb == 1 && csb != 1 {
        first = n.div_ceil(NR);
        for t in 0..first {
            let o = out.wrapping_add(t * NR * kc);
            for h in 0..NR / 16 {
                let j0 = t * NR + h * 16;
                if j0 >= n {
                    for p in 0..kc {
                        // SAFETY: row p of the panel holds NR elements; these are 16h..16h+16.
                        unsafe { std::ptr::write_bytes(o.add(p * NR + h * 16), 0, 16) };
                    }
                    continue;
                }
                let cols: [*const f32; 16] =
                    std::array::from_fn(|q| b.wrapping_offset((j0 + q).min(n - 1) as isize * csb));
                // SAFETY: the 16 columns (each below n) are inside B's block for p < kc; the
                // panel holds NR·kc, of which these write columns 16h..16h+16 of each row;
                // this module's kernels run only on hosts with AVX-512 F.
                unsafe {
                    transpose_rows(kc, cols, |p| {
                        (o.wrapping_add(p * NR + h * 16), o.wrapping_add(p * NR + h * 16 + 8))
                    })
                };
                let valid = n - j0;
                if valid < 16 {
                    for p in 0..kc {
                        // SAFETY: columns 16h + valid..16h + 16 of the panel's row p.
                        unsafe {
                            std::ptr::write_bytes(o.add(p * NR + h * 16 + valid), 0, 16 - valid)
                        };
                    }
                }
            }
        }
    }
    for t in first..n.div_ceil(NR) {
        let o = out.wrapping_add(t * NR * kc);
        if csb == 1 && (t + 1) * NR <= n {
            for p in 0..kc {
                // SAFETY: row p's NR columns from t·NR are inside B's block; the panel's row p
                // is NR elements, disjoint from B.
                unsafe {
                    let src = b.offset(p as isize * rsb + (t * NR) as isize);
                    std::ptr::copy_nonoverlapping(src, o.add(p * NR), NR)
                }
            }
            continue;
        }
        for q in 0..NR {
            let j = t * NR + q;
            let col = b.wrapping_offset(j as isize * csb);
            for p in 0..kc {
                // SAFETY: (p, j) is inside B's block when j < n; the panel holds NR·kc.
                unsafe {
                    *o.add(p * NR + q) = if j < n { *col.offset(p as isize * rsb) } else { 0.0 }
                };
            }
        }
    }
}

/// Writes the transpose of 16 rows of `kc` elements each: for every p < kc, element p of the
/// 16 rows goes to `dst(p)`, the first eight to `.0` and the last eight to `.1`. Blocks of 16
/// elements of K are transposed in registers (four rounds of shuffles), the rest one at a time.
///
/// # Safety
/// The host has AVX-512 F; each row is valid to read for kc elements; each `dst(p)` pair is
/// valid to write for 8 elements each and overlaps no row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_rows(
    kc: usize,
    rows: [*const f32; 16],
    dst: impl Fn(usize) -> (*mut f32, *mut f32),
) {
    use std::arch::x86_64::{
        __m512, _mm256_storeu_pd, _mm256_storeu_ps, _mm512_castpd_ps, _mm512_castps_pd,
        _mm512_castps512_ps256, _mm512_extractf64x4_pd, _mm512_loadu_ps, _mm512_shuffle_f32x4,
        _mm512_unpackhi_pd, _mm512_unpackhi_ps, _mm512_unpacklo_pd, _mm512_unpacklo_ps,
    };
    let blocks = kc / 16;
    for blk in 0..blocks {
        let p0 = blk * 16;
        // SAFETY: elements p0..p0 + 16 of each row are inside it (p0 + 16 ≤ kc).
        let r: [__m512; 16] = std::array::from_fn(|i| unsafe { _mm512_loadu_ps(rows[i].add(p0)) });
        // Pairs of rows interleaved within each 128-bit lane, then pairs of pairs: lane l of
        // u[4g + j] holds element 4l + j of rows 4g..4g + 4.
        let t: [__m512; 16] = std::array::from_fn(|i| {
            let (x, y) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
            if i % 2 == 0 { _mm512_unpacklo_ps(x, y) } else { _mm512_unpackhi_ps(x, y) }
        });
        let u: [__m512; 16] = std::array::from_fn(|i| {
            let (g, j) = (i / 4, i % 4);
            let (x, y) =
                (_mm512_castps_pd(t[4 * g + j / 2]), _mm512_castps_pd(t[4 * g + j / 2 + 2]));
            _mm512_castpd_ps(if j % 2 == 0 {
                _mm512_unpacklo_pd(x, y)
            } else {
                _mm512_unpackhi_pd(x, y)
            })
        });
        // The 128-bit lanes gathered across groups: column c of the block is element c of
        // every row.
        let mut col = [u[0]; 16];
        for j in 0..4 {
            let x = _mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]);
            let y = _mm512_shuffle_f32x4::<0xdd>(u[j], u[4 + j]);
            let x2 = _mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]);
            let y2 = _mm512_shuffle_f32x4::<0xdd>(u[8 + j], u[12 + j]);
            col[j] = _mm512_shuffle_f32x4::<0x88>(x, x2);
            col[j + 8] = _mm512_shuffle_f32x4::<0xdd>(x, x2);
            col[j + 4] = _mm512_shuffle_f32x4::<0x88>(y, y2);
            col[j + 12] = _mm512_shuffle_f32x4::<0xdd>(y, y2);
        }
        for (c, v) in col.iter().enumerate() {
            let (lo, hi) = dst(p0 + c);
            // SAFETY: the caller's contract for dst(p0 + c).
            unsafe {
                _mm256_storeu_ps(lo, _mm512_castps512_ps256(*v));
                _mm256_storeu_pd(hi.cast(), _mm512_extractf64x4_pd::<1>(_mm512_castps_pd(*v)));
            }
        }
    }
    for p in blocks * 16..kc {
        let (lo, hi) = dst(p);
        for (i, row) in rows.iter().enumerate() {
            // SAFETY: element p < kc of row i; the destinations are the caller's.
            unsafe {
                let x = *row.add(p);
                if i < 8 { *lo.add(i) = x } else { *hi.add(i - 8) = x }
            }
        }
    }
}

/// How [`kernel`] reads A: element (r, p) of the tile's MR rows, column p advancing one step
/// per call of `next`.
trait Panel {
    /// A[r, p] at the current column p.
    ///
    /// # Safety
    /// r < MR (or < the tile's valid rows for a source read in place) and p < kc.
    unsafe fn get(&self, r: usize) -> f32;
    /// Move to the next column of K.
    fn next(&mut self);
}

/// A addressed as `a[r·ars + p·acs]`: a packed panel (`PACKED`: strides 1 and MR, constants
/// the compiler folds into the loads) or A's rows in place.
#[derive(Clone, Copy)]
struct InA<const PACKED: bool> {
    a: *const f32,
    ars: isize,
    acs: isize,
}

impl<const PACKED: bool> Panel for InA<PACKED> {
    #[inline(always)]
    unsafe fn get(&self, r: usize) -> f32 {
        let ars = if PACKED { 1 } else { self.ars };
        // SAFETY: inside A (caller).
        unsafe { *self.a.offset(r as isize * ars) }
    }
    #[inline(always)]
    fn next(&mut self) {
        let acs = if PACKED { MR as isize } else { self.acs };
        self.a = self.a.wrapping_offset(acs);
    }
}

/// A read where it lies through offsets: `rows[r][koff[p]]` (an operand whose rows or K axes
/// do not collapse to one stride each, such as a convolution's patches).
#[derive(Clone, Copy)]
struct Gathered {
    rows: [*const f32; MR],
    koff: *const isize,
}

impl Panel for Gathered {
    #[inline(always)]
    unsafe fn get(&self, r: usize) -> f32 {
        // SAFETY: the row's element at this K offset is inside A (caller).
        unsafe { *self.rows[r].offset(*self.koff) }
    }
    #[inline(always)]
    fn next(&mut self) {
        self.koff = self.koff.wrapping_add(1);
    }
}

/// One MR×NR tile over kc elements of K: A read through `a` (a packed panel, A's rows in
/// place, or gathered through offsets), `b` a packed panel (64-byte aligned). The accumulators
/// start from zero on the first block of K, else from c, so every element's chain continues in
/// order, however A is read.
///
/// # Safety
/// The host has AVX-512 F; `a` is valid for r < MR (or r < tile.mr when read in place with
/// tile.mr == MR), p < kc; `b` for kc·NR elements, aligned to 64 bytes; the tile's mr×nr
/// elements of c are valid.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel<P: Panel>(kc: usize, a: P, b: *const f32, t: Tile) {
    use std::arch::x86_64::{
        __m512, _MM_HINT_T0, _mm_prefetch, _mm512_fmadd_ps, _mm512_load_ps, _mm512_loadu_ps,
        _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
    };
    // A whole tile with contiguous rows is read and written in c itself, else through `tmp`.
    let direct = t.mr == MR && t.nr == NR && t.csc == 1;
    // Zeroed only when used: clearing 1 KiB per tile was 3 % of a 640×256×288 product.
    let mut tmp = std::mem::MaybeUninit::<[f32; MR * NR]>::uninit();
    if !direct {
        tmp.write([0f32; MR * NR]);
    }
    let (dst, rs) =
        if direct { (t.c, t.rsc) } else { (tmp.as_mut_ptr().cast::<f32>(), NR as isize) };
    if !direct && !t.first {
        for r in 0..t.mr {
            for q in 0..t.nr {
                // SAFETY: (r, q) is inside the tile; `dst` is `tmp`, MR·NR elements.
                unsafe {
                    *dst.add(r * NR + q) = *t.c.offset(r as isize * t.rsc + q as isize * t.csc)
                };
            }
        }
    }
    if direct && t.first {
        // The tile's lines of c are fetched while the FMAs run: c is often fresh memory
        // (products of a batch written one after another), and its stores would otherwise
        // wait on every line at the end (a quarter of the time of 512×32×128 products).
        for r in 0..MR as isize {
            // A prefetch has no effect on memory; the addresses are the tile's rows.
            _mm_prefetch::<_MM_HINT_T0>(dst.wrapping_offset(r * rs) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(dst.wrapping_offset(r * rs + 16) as *const i8);
        }
    }
    let mut acc: [[__m512; 2]; MR] = [[_mm512_setzero_ps(); 2]; MR];
    if !t.first {
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: row r of `dst` holds NR elements (c's tile row when direct, else tmp).
            unsafe {
                row[0] = _mm512_loadu_ps(dst.offset(r as isize * rs));
                row[1] = _mm512_loadu_ps(dst.offset(r as isize * rs + 16));
            }
        }
    }
    let (mut a, mut b) = (a, b);
    for _ in 0..kc {
        // SAFETY: B's panel row and A's column p are inside their buffers (the caller's
        // contract); the panel is 64-byte aligned and NR = 32 keeps every row aligned.
        unsafe {
            let b0 = _mm512_load_ps(b);
            let b1 = _mm512_load_ps(b.add(16));
            for (r, row) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(a.get(r));
                row[0] = _mm512_fmadd_ps(x, b0, row[0]);
                row[1] = _mm512_fmadd_ps(x, b1, row[1]);
            }
        }
        a.next();
        b = b.wrapping_add(NR);
    }
    for (r, row) in acc.iter().enumerate() {
        // SAFETY: as for the loads.
        unsafe {
            _mm512_storeu_ps(dst.offset(r as isize * rs), row[0]);
            _mm512_storeu_ps(dst.offset(r as isize * rs + 16), row[1]);
        }
    }
    if !direct {
        for r in 0..t.mr {
            for q in 0..t.nr {
                // SAFETY: (r, q) is inside the tile; `dst` is `tmp`, MR·NR elements.
                unsafe {
                    *t.c.offset(r as isize * t.rsc + q as isize * t.csc) = *dst.add(r * NR + q)
                };
            }
        }
    }
}

/// `c = a·bᵀ`-style product for rows of `a` (`a[i·rsa + p]`) and columns of `b`
/// (`b[p + j·csb]`) both contiguous along k: tiles of 4 rows of a by 4 columns of b, each of
/// the 16 products a vector of 16 lanes along k; no packing. See [`sgemm`] for the order.
///
/// # Safety
/// As [`sgemm`], with `csa == rsb == 1`.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm_dot(
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    rsa: isize,
    b: *const f32,
    csb: isize,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    // Rows of a per chunk: the chunk stays in L2 while every tile of b passes over it. Rows a
    // multiple of 1 KiB apart (and not contiguous) are copied first: rows of a Jacobian lie a
    // power of two apart (256 KiB on the transformer), so in place they all map to the same
    // few sets of L2 and the chunk would not stay (15 % of a Gram product's time). Packed
    // rows are an odd number of cache lines apart and need no copy.
    let chunk = (DOT_A_BYTES / 4 / k.max(1) / DOT_T * DOT_T).max(DOT_T);
    let copy = rsa != k as isize && rsa % 256 == 0;
    // The copy's rows lie an odd number of cache lines apart, so the four rows a tile reads
    // fall in four sets of L1 beside B's columns.
    let ks = (k.div_ceil(16) | 1) * 16;
    PACK.with(|buf| {
        let (buf, held) = &mut *buf.borrow_mut();
        // The copies of A's rows overwrite whatever the buffer held.
        *held = None;
        let need = if copy { chunk * ks } else { 0 };
        if buf.len() < need {
            buf.resize(need, 0.0);
        }
        let pa = buf.as_mut_ptr();
        for i0 in (0..m).step_by(chunk) {
            let i1 = (i0 + chunk).min(m);
            let (rows_of, rs) = if copy {
                for r in i0..i1 {
                    // SAFETY: row r of a holds k elements; the buffer holds chunk·ks, so row
                    // r − i0 fits, and it is disjoint from a.
                    unsafe {
                        let src = a.offset(r as isize * rsa);
                        std::ptr::copy_nonoverlapping(src, pa.add((r - i0) * ks), k)
                    }
                }
                (pa.cast_const().wrapping_sub(i0 * ks), ks as isize)
            } else {
                (a, rsa)
            };
            for j in (0..n).step_by(DOT_Q) {
                for i in (i0..i1).step_by(DOT_T) {
                    // Rows past m (columns past n) repeat the last one and are not stored, so
                    // every element is computed by the same operations wherever its tile
                    // starts; with a copy, rows past the chunk's last repeat that one.
                    let last = if copy { i1 - 1 } else { m - 1 };
                    let rows: [*const f32; DOT_T] = std::array::from_fn(|r| {
                        rows_of.wrapping_offset((i + r).min(last) as isize * rs)
                    });
                    let cols: [*const f32; DOT_Q] = std::array::from_fn(|q| {
                        b.wrapping_offset((j + q).min(n - 1) as isize * csb)
                    });
                    let sums = {
                        // SAFETY: each row and column holds k elements (the caller's contract,
                        // or the copy).
                        unsafe { dot_tile(k, rows, cols) }
                    };
                    for r in 0..DOT_T.min(m - i) {
                        for q in 0..DOT_Q.min(n - j) {
                            let at = (i + r) as isize * rsc + (j + q) as isize * csc;
                            // SAFETY: (i + r, j + q) is inside c.
                            unsafe { *c.offset(at) = sums[q * DOT_T + r] };
                        }
                    }
                }
            }
        }
    });
}

/// The 4×[`DOT_Q`] sums `Σ_p rows[r][p]·cols[q][p]`, returned transposed (`[q·4 + r]`, 32
/// slots of which the first 4·DOT_Q hold sums): 4·DOT_Q accumulators of 16 lanes, then halving
/// trees that each reduce sixteen of them at once (lanes l and l+8 of each, then +4, +2, +1).
///
/// # Safety
/// The host has AVX-512 F; every row and column is valid for k elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_tile(k: usize, rows: [*const f32; 4], cols: [*const f32; DOT_Q]) -> [f32; 32] {
    use std::arch::x86_64::{
        __m512, __mmask16, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_maskz_loadu_ps,
        _mm512_setzero_ps, _mm512_storeu_ps,
    };
    let mut acc = [[_mm512_setzero_ps(); DOT_Q]; 4];
    let mut p = 0;
    while p + 16 <= k {
        // SAFETY: p + 16 ≤ k elements of every row and column.
        let va: [__m512; 4] = std::array::from_fn(|r| unsafe { _mm512_loadu_ps(rows[r].add(p)) });
        for q in 0..DOT_Q {
            // SAFETY: as above.
            let vb = unsafe { _mm512_loadu_ps(cols[q].add(p)) };
            for r in 0..4 {
                acc[r][q] = _mm512_fmadd_ps(va[r], vb, acc[r][q]);
            }
        }
        p += 16;
    }
    if p < k {
        // The last k − p < 16 elements; the masked lanes load zeros and read nothing.
        let mask = ((1u32 << (k - p)) - 1) as __mmask16;
        // SAFETY: the mask covers elements p..k only.
        let va: [__m512; 4] =
            std::array::from_fn(|r| unsafe { _mm512_maskz_loadu_ps(mask, rows[r].add(p)) });
        for q in 0..DOT_Q {
            // SAFETY: as above.
            let vb = unsafe { _mm512_maskz_loadu_ps(mask, cols[q].add(p)) };
            for r in 0..4 {
                acc[r][q] = _mm512_fmadd_ps(va[r], vb, acc[r][q]);
            }
        }
    }
    // Columns 0..4 in one tree, the rest (padded with zero accumulators, which change no
    // other sum's bits: every addition is between lanes of one accumulator) in a second.
    let zero = _mm512_setzero_ps();
    let (first, second) = (
        std::array::from_fn(|t| acc[t / 4][t % 4]),
        std::array::from_fn(|t| {
            let q = 4 + t % 4;
            if q < DOT_Q { acc[t / 4][q] } else { zero }
        }),
    );
    // SAFETY: this host has AVX-512 F (the caller's contract).
    let (first, second) = unsafe { (halving_tree(first), halving_tree(second)) };
    let mut out = [0f32; 32];
    // SAFETY: `out` holds 32 f32.
    unsafe {
        _mm512_storeu_ps(out.as_mut_ptr(), first);
        _mm512_storeu_ps(out.as_mut_ptr().add(16), second);
    }
    out
}

/// The sums of sixteen vectors' lanes, as one vector: element 4·(t % 4) + t / 4 is the sum of
/// `x[t]`'s lanes, added as a halving tree (lanes l and l+8, then +4, +2, +1).
///
/// # Safety
/// The host has AVX-512 F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn halving_tree(x: [std::arch::x86_64::__m512; 16]) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::{__m512, _mm512_add_ps, _mm512_shuffle_f32x4, _mm512_shuffle_ps};
    // Level 1: 128-bit blocks 0+2 and 1+3 of a pair (lanes l and l+8); level 2: the two
    // halves that remain (+4); levels 3 and 4 within 128-bit blocks (+2, +1).
    let l1: [__m512; 8] = std::array::from_fn(|t| {
        let (u, v) = (x[2 * t], x[2 * t + 1]);
        _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(u, v), _mm512_shuffle_f32x4::<0xEE>(u, v))
    });
    let l2: [__m512; 4] = std::array::from_fn(|t| {
        let (u, v) = (l1[2 * t], l1[2 * t + 1]);
        _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(u, v), _mm512_shuffle_f32x4::<0xDD>(u, v))
    });
    let l3: [__m512; 2] = std::array::from_fn(|t| {
        let (u, v) = (l2[2 * t], l2[2 * t + 1]);
        _mm512_add_ps(_mm512_shuffle_ps::<0x44>(u, v), _mm512_shuffle_ps::<0xEE>(u, v))
    });
    _mm512_add_ps(_mm512_shuffle_ps::<0x88>(l3[0], l3[1]), _mm512_shuffle_ps::<0xDD>(l3[0], l3[1]))
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    thread_local! {
        /// Narrow B blocks this thread has packed ([`super::pack_narrow_b`]).
        pub(super) static NARROW_PACKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    use super::{
        Sharing, gathers, has_own_kernel, new_call, sgemm, sgemm_gathered, uses_dot_planned,
    };

    /// Plans assume one choice of the dot kernel on every host (the AMD host's factor): Gram
    /// blocks and large squares in the dot kernel, a skinny B in the tile kernel, whatever
    /// `dot_factor` this host has.
    #[test]
    fn the_planned_kernel_choice_does_not_depend_on_the_host() {
        assert!(uses_dot_planned((160, 160), 1024, 1, 1));
        assert!(uses_dot_planned((1024, 1024), 576, 1, 1));
        assert!(uses_dot_planned((10, 160), 1024, 1, 1));
        assert!(!uses_dot_planned((40960, 32), 576, 1, 1));
        assert!(!uses_dot_planned((160, 160), 511, 1, 1));
    }

    /// A read in place through row and K offsets gives the bits of the same A packed into a
    /// row-major copy and multiplied by [`sgemm`] (the tile kernel: B row-major, so never the
    /// dot kernel): full and ragged tiles of rows, one and two tiles of B, K in one block and
    /// in two (past `KC_NARROW`), K offsets that jump (a window's rows).
    #[test]
    fn a_gathered_through_offsets_has_the_bits_of_a_packed() {
        if !has_own_kernel() {
            return;
        }
        // Narrow B (A's rows read in place), then wide (A's blocks packed from the offsets):
        // rows scattered, or in runs of 16 consecutive elements (whole panels copied, a
        // ragged run last), over several blocks of rows and of K.
        let cases = [
            (37, 300, 32, false),
            (64, 1030, 50, false),
            (8, 5, 1, false),
            (19, 1500, 64, false),
            (3, 9, 17, false),
            (37, 300, 100, false),
            (150, 600, 100, true),
            (45, 70, 530, true),
        ];
        for (m, k, n, runs) in cases {
            assert_eq!(gathers(n), n <= 64);
            let row = |i: usize| {
                if runs { (i / 16) * (k + 40) * 16 + i % 16 } else { i * (k + 40) + (i % 3) * 5 }
            };
            let rows: Vec<isize> = (0..m).map(|i| row(i) as isize).collect();
            let koff: Vec<isize> = (0..k).map(|p| (p + (p / 7) * 3) as isize).collect();
            let len = (rows[m - 1] + koff[k - 1] + 1) as usize;
            let a: Vec<f32> = (0..len).map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 32.0).collect();
            let packed: Vec<f32> = rows
                .iter()
                .flat_map(|&r| koff.iter().map(move |&o| (r + o) as usize))
                .map(|i| a[i])
                .collect();
            let (mut want, mut got) = (vec![0f32; m * n], vec![1f32; m * n]);
            let (ni, ki) = (n as isize, k as isize);
            // SAFETY: every buffer holds the elements its extents and strides address; the
            // host has AVX-512 F.
            unsafe {
                sgemm(
                    m,
                    k,
                    n,
                    packed.as_ptr(),
                    ki,
                    1,
                    b.as_ptr(),
                    ni,
                    1,
                    want.as_mut_ptr(),
                    ni,
                    1,
                    (m, n),
                    Sharing::NONE,
                );
                let a = super::Offsets { a: a.as_ptr(), rows: &rows, koff: &koff };
                let c = (got.as_mut_ptr(), ni, 1);
                sgemm_gathered(a, n, (b.as_ptr(), ni, 1), c, Sharing::NONE);
            }
            let same = want.iter().zip(&got).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{m}×{k}×{n}");
            // And the values are the product's (each within k·u·Σ|a·b| of the exact sum).
            for i in 0..m {
                for j in 0..n {
                    let (mut exact, mut mag) = (0f64, 0f64);
                    for p in 0..k {
                        let t = f64::from(packed[i * k + p]) * f64::from(b[p * n + j]);
                        exact += t;
                        mag += t.abs();
                    }
                    let bound = k as f64 * f64::from(f32::EPSILON) * mag + 1e-30;
                    assert!(
                        (f64::from(got[i * n + j]) - exact).abs() <= bound,
                        "{m}×{k}×{n} ({i}, {j})"
                    );
                }
            }
        }
    }

    /// `c = a·b` in f64 from row-major f32 operands (a m×k, b k×n with column stride `csb`,
    /// row stride 1 when `csb` is k, else n).
    fn product(a: &[f32], b: &[f32], (m, k, n): (usize, usize, usize), csb: usize) -> Vec<f64> {
        let rsb = if csb == 1 { n } else { 1 };
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] =
                    (0..k).map(|p| f64::from(a[i * k + p]) * f64::from(b[p * rsb + j * csb])).sum();
            }
        }
        c
    }

    /// Consecutive narrow products of one call that share their B (patches against each of a
    /// layer's cotangents) keep its packed panels; a later call packs again even when its B
    /// lies at the same address with new values, and a B of another shape or place is packed
    /// afresh. Every result within k·u·Σ|a·b| of the f64 product (the values here make a
    /// stale panel miss by far more).
    /// Beside a narrow B, an A whose step along K is long (past `IN_PLACE_MAX_K_STEP`) is
    /// packed, not read in place (no narrow panels are packed: the wide path), in either
    /// orientation; one whose step is short is read in place. Both give the bits of the same
    /// product with contiguous operands (one chain of fused multiply-adds per element).
    #[test]
    fn an_a_with_a_long_step_along_k_is_packed() {
        if !has_own_kernel() {
            return;
        }
        let (m, k, n, far) = (64, 100, 32, 512);
        let val = |i: usize, s: usize| ((i * s % 89) as f32 - 44.0) / 16.0;
        let a: Vec<f32> = (0..m * k).map(|i| val(i, 31)).collect();
        let b: Vec<f32> = (0..k * n).map(|i| val(i, 47)).collect();
        // A column by column `far` apart (a[i + far·p]), B row by row `far` apart.
        let mut af = vec![0f32; far * k];
        let mut bf = vec![0f32; far * k];
        for p in 0..k {
            for i in 0..m {
                af[i + far * p] = a[i * k + p];
            }
            bf[far * p..far * p + n].copy_from_slice(&b[p * n..(p + 1) * n]);
        }
        let run = |a: &[f32], (rsa, csa): (isize, isize), b: &[f32], rsb: isize| {
            let mut c = vec![f32::NAN; m * n];
            // SAFETY: a and b address m×k and k×n elements inside them through these strides;
            // c is m×n row-major; the host has AVX-512 F.
            unsafe {
                sgemm(
                    m,
                    k,
                    n,
                    a.as_ptr(),
                    rsa,
                    csa,
                    b.as_ptr(),
                    rsb,
                    1,
                    c.as_mut_ptr(),
                    n as isize,
                    1,
                    (m, n),
                    Sharing::NONE,
                )
            };
            c
        };
        let packs = || NARROW_PACKS.with(std::cell::Cell::get);
        let before = packs();
        let want = run(&a, (k as isize, 1), &b, n as isize);
        assert_eq!(packs() - before, 1, "a short step: A read in place beside B's panel");
        let got = run(&af, (1, far as isize), &bf, far as isize);
        assert_eq!(packs() - before, 1, "a long step: A packed, no narrow panels");
        assert!(got.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()));
        // Within the tile kernel's bound, k·u·Σ|a·b| (u = ε/2; ε leaves a factor of two).
        let exact = product(&a, &b, (m, k, n), 1);
        let abs = |x: &[f32]| x.iter().map(|v| v.abs()).collect::<Vec<_>>();
        let mag = product(&abs(&a), &abs(&b), (m, k, n), 1);
        for ((&x, &y), &g) in want.iter().zip(&exact).zip(&mag) {
            assert!((f64::from(x) - y).abs() <= k as f64 * f64::from(f32::EPSILON) * g);
        }
    }

    #[test]
    fn a_narrow_b_is_packed_once_for_the_products_of_a_call_that_share_it() {
        if !has_own_kernel() {
            return;
        }
        // B's columns contiguous along k (rows of patches), as the kernel transposes them; A
        // 32 rows, so the kernel keeps this orientation when B is shared.
        let (m, k, n) = (32, 1024, 28);
        let val = |i: usize, s: usize| ((i * s % 97) as f32 - 48.0) / 32.0;
        let a: Vec<Vec<f32>> =
            (0..3).map(|t| (0..m * k).map(|i| val(i, 37 + t)).collect()).collect();
        let mut b: Vec<f32> = (0..k * n).map(|i| val(i, 53)).collect();
        let run = |a: &[f32], b: &[f32], n: usize, share: Sharing| {
            let mut c = vec![f32::NAN; m * n];
            // SAFETY: a is m×k row-major, b k×n with columns contiguous along k, c m×n; the
            // host has AVX-512 F; no element of a or b changes during a call (`share.call`).
            unsafe {
                let (ki, ni) = (k as isize, n as isize);
                sgemm(
                    m,
                    k,
                    n,
                    a.as_ptr(),
                    ki,
                    1,
                    b.as_ptr(),
                    1,
                    ki,
                    c.as_mut_ptr(),
                    ni,
                    1,
                    (m, n),
                    share,
                )
            };
            c
        };
        let check = |c: &[f32], a: &[f32], b: &[f32], n: usize, what: &str| {
            let want = product(a, b, (m, k, n), k);
            let mag = product(
                &a.iter().map(|x| x.abs()).collect::<Vec<_>>(),
                &b.iter().map(|x| x.abs()).collect::<Vec<_>>(),
                (m, k, n),
                k,
            );
            for ((&got, &w), &g) in c.iter().zip(&want).zip(&mag) {
                let bound = k as f64 * f64::from(f32::EPSILON) * g + 1e-30;
                assert!((f64::from(got) - w).abs() <= bound, "{what}: {got} against {w}");
            }
        };
        let packs = || NARROW_PACKS.with(std::cell::Cell::get);
        let before = packs();
        let share = Sharing { call: new_call(), a: 1, b: 3 };
        for (t, a) in a.iter().enumerate() {
            check(&run(a, &b, n, share), a, &b, n, &format!("product {t} of the first call"));
        }
        assert_eq!(packs() - before, 1, "B packed once for the three products");
        // New values at the same address, in a new call.
        for x in &mut b {
            *x = -*x * 0.5 + 0.25;
        }
        let second = Sharing { call: new_call(), ..share };
        check(&run(&a[0], &b, n, second), &a[0], &b, n, "the second call");
        // The same call, B from its second column: another block, packed afresh.
        let c = run(&a[1], &b[k..], 20, second);
        check(&c, &a[1], &b[k..], 20, "another block of B");
        assert_eq!(packs() - before, 3, "each new block packed");
        // Without a call, every product packs.
        run(&a[2], &b, n, Sharing::NONE);
        run(&a[2], &b, n, Sharing::NONE);
        assert_eq!(packs() - before, 5);
    }
}
