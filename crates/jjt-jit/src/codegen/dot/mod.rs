//! Contractions (`dot_general`). [`strategy`] chooses how a [`DotStep`] is computed; one module
//! per strategy emits it (the first row that applies wins):
//!
//! | strategy | module | when |
//! |---|---|---|
//! | [`DotStrategy::Runtime`] | `runtime` | large (M·N·K per product ≥ [`crate::gemm::GEMM_THRESHOLD`], M and N ≥ [`crate::gemm::GEMM_MIN_MN`]): the runtime contraction ([`crate::contract`]) with matrix-multiply leaves |
//! | [`DotStrategy::Runtime`] | `runtime` | not strict, a product repeated ≥ 4 times along output axes where neither operand moves, ≥ `GEMM_THRESHOLD` multiply-adds in all: computed once and copied |
//! | [`DotStrategy::Runtime`] | `runtime` | not strict, an inline form would sum more than [`INLINE_MAX_K`] terms in sequence (blocks of K summed pairwise) |
//! | [`DotStrategy::OutputVectors`] | `out_vec` | the output's innermost axis is contiguous and both operands advance by 0 or 1 along it |
//! | [`DotStrategy::RegisterTiles`] | `out_vec` | as above, a long contraction, one operand constant along the vector axis |
//! | [`DotStrategy::ContractionVectors`], [`DotStrategy::MatrixVector`] | `k_vec` | not strict, the innermost contracted axis contiguous in both operands |
//! | [`DotStrategy::Runtime`] | `runtime` | not strict, and no inline vector form applies: the runtime contraction with its vectorised dot loops |
//! | [`DotStrategy::Scalar`] | here | strict mode (and bool contractions), in the interpreter's order (blocked pairwise, [`jjt_ir::sum`]; the only form strict mode uses above 128 products) |
//!
//! So in fast mode no float contraction runs on a scalar-only path. [`dot_path`] reports the
//! choice (for the cost model and the tests).
//!
//! Every inline form reads the operands as views over the output's index space with the
//! contracted axes appended (a [`Contraction`]).

mod k_vec;
mod out_vec;
mod runtime;

use std::borrow::Cow;

use cranelift_codegen::ir::{InstBuilder, Value};
use cranelift_frontend::Variable;
use jjt_ir::DType;
use jjt_ir::ops::DotGeneral;

use super::{Cg, GemmUse, Mac, Mode, Policy, Summation, lanes, scalar_ty};
use crate::JitError;
use crate::contract::{Descriptor, DotKind, DotPath};
use crate::gemm::GEMM_THRESHOLD;
use crate::plan::{DotStep, Expr, MapStep, View};

/// The longest sequence of terms the inline vector forms sum one after the other (fast mode):
/// all of K per output for vectors over outputs, K over 2·lanes accumulators for vectors along
/// the contraction; their error grows like that length times u, so longer ones go to the
/// runtime contraction, whose blocks of [`crate::contract::KB`] combine pairwise. Not `KB`
/// itself: a transposed 2048×2048 matrix–vector product took 1.2 ms inline and 2.4 ms in the
/// runtime contraction (`cargo run --release -p jjt-jit --example contractions -- 1`), so the
/// inline forms keep K up to 4·KB (error ≤ 4096·u·Σ|a·b|).
pub(crate) const INLINE_MAX_K: usize = 4 * crate::contract::KB;

/// Copies from which a contraction repeated along broadcast axes goes to the runtime
/// contraction (computed once, then copied) even when one product is small.
const REPLICATED_MIN_COPIES: usize = 4;

/// Contractions over at most this many elements are unrolled in the vector-over-outputs form.
const UNROLL_K: usize = 16;

/// One of the two operands of a contraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Lhs,
    Rhs,
}

impl Side {
    /// The other operand.
    fn other(self) -> Side {
        match self {
            Side::Lhs => Side::Rhs,
            Side::Rhs => Side::Lhs,
        }
    }

    /// `(lhs, rhs)` from this side's value and the other side's.
    fn order<T>(self, this: T, other: T) -> (T, T) {
        match self {
            Side::Lhs => (this, other),
            Side::Rhs => (other, this),
        }
    }
}

/// How the contracted axes are walked in [`DotStrategy::OutputVectors`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Walk {
    /// A short contraction (one axis of at most [`UNROLL_K`]): straight-line code.
    Unrolled,
    /// A loop nest.
    Loop,
}

/// How a contraction is computed.
#[derive(Clone, Debug, PartialEq)]
enum DotStrategy {
    /// The output has no elements: nothing to do.
    Empty,
    /// A contracted axis has length 0: the output is zeros.
    Zeros,
    /// One call to the runtime contraction ([`crate::contract`]).
    Runtime(Box<Descriptor>),
    /// Vectors over the output's innermost axis (lanes are independent outputs).
    OutputVectors(Walk),
    /// Vectors over the output's innermost axis in register tiles; the operand on `splat`'s
    /// side does not move along that axis and is splatted.
    RegisterTiles {
        /// The operand that is constant along the vector axis.
        splat: Side,
    },
    /// Vectors along the innermost contracted axis, one output at a time.
    ContractionVectors,
    /// Vectors along the innermost contracted axis, in blocks of outputs along `axis`, an
    /// output axis along which one operand does not move (the rows of a matrix–vector
    /// product), so that operand is loaded once per block.
    MatrixVector {
        /// The output axis of the blocks.
        axis: usize,
    },
    /// One output at a time, in the interpreter's order (bit-identical to it).
    Scalar,
}

impl DotStrategy {
    /// How the step was compiled, for the profile's step labels.
    fn label(&self) -> String {
        match self {
            DotStrategy::Empty | DotStrategy::Zeros => "",
            DotStrategy::Runtime(d) => return d.describe(),
            DotStrategy::OutputVectors(_) | DotStrategy::RegisterTiles { .. } => {
                "inline, vectors over outputs"
            }
            DotStrategy::ContractionVectors | DotStrategy::MatrixVector { .. } => {
                "inline, vectors along the contraction"
            }
            DotStrategy::Scalar => "inline, scalar",
        }
        .to_string()
    }

    /// The [`DotPath`] of this strategy under `threads`.
    fn path(&self, s: &DotStep, threads: usize) -> DotPath {
        let macs =
            s.shape.iter().product::<usize>().saturating_mul(
                s.dims.lhs_contract.iter().map(|&a| s.lhs_shape[a]).product::<usize>(),
            );
        let kind = match self {
            DotStrategy::Runtime(d) => return d.path(threads),
            DotStrategy::Empty | DotStrategy::Zeros => DotKind::Trivial,
            DotStrategy::Scalar => DotKind::InlineScalar,
            DotStrategy::OutputVectors(_)
            | DotStrategy::RegisterTiles { .. }
            | DotStrategy::ContractionVectors
            | DotStrategy::MatrixVector { .. } => DotKind::InlineVector,
        };
        DotPath {
            kind,
            packed_bytes: 0,
            packs_lhs: false,
            gathers_lhs: false,
            packs_lhs_k_outer: false,
            packs_rhs: false,
            swapped: false,
            products: 1,
            k_blocks: 1,
            threaded: false,
            copies: 1,
            macs,
        }
    }
}

/// A contraction over the output's index space: both operands as views over the output's
/// axes with the contracted axes appended (stride 0 along the axes an operand does not have).
/// The output's axes are loops in any order (each output is its own sum), so an axis the
/// destination stores contiguously is moved last when the last is not: the vector forms run
/// along the last axis (a result stored in another order than its axes', see
/// `plan::choose_layouts`: per-example bias gradients summed over positions, vectors over
/// channels; on the zoo's CNN 0.42 ms in the runtime's dot loops, 0.16 ms so with the tiles
/// of `out_vec`).
struct Contraction<'s> {
    /// Destination (its strides in the order of `shape`).
    dst: Cow<'s, View>,
    /// Output shape (the loop order).
    shape: Cow<'s, [usize]>,
    /// Left operand over `shape ++ cdims`.
    lhs: View,
    /// Right operand over `shape ++ cdims`.
    rhs: View,
    /// Extents of the contracted axes.
    cdims: Vec<usize>,
    /// How a product is added to its accumulator.
    mac: Mac,
}

impl<'s> Contraction<'s> {
    fn new(s: &'s DotStep, mac: Mac) -> Self {
        let DotStep { dst, shape, lhs, lhs_shape, rhs, rhs_shape, dims } = s;
        let lfree = DotGeneral::free_axes(lhs_shape.len(), &dims.lhs_contract, &dims.lhs_batch);
        let rfree = DotGeneral::free_axes(rhs_shape.len(), &dims.rhs_contract, &dims.rhs_batch);
        let nb = dims.lhs_batch.len();
        let expand =
            |v: &View, batch: &[usize], free: &[usize], start: usize, contract: &[usize]| {
                let mut strides = vec![0isize; shape.len() + contract.len()];
                for (k, &a) in batch.iter().enumerate() {
                    strides[k] = v.strides[a];
                }
                for (k, &a) in free.iter().enumerate() {
                    strides[start + k] = v.strides[a];
                }
                for (k, &a) in contract.iter().enumerate() {
                    strides[shape.len() + k] = v.strides[a];
                }
                View { strides, ..v.clone() }
            };
        let mut c = Contraction {
            dst: Cow::Borrowed(dst),
            shape: Cow::Borrowed(shape),
            lhs: expand(lhs, &dims.lhs_batch, &lfree, nb, &dims.lhs_contract),
            rhs: expand(rhs, &dims.rhs_batch, &rfree, nb + lfree.len(), &dims.rhs_contract),
            cdims: dims.lhs_contract.iter().map(|&a| lhs_shape[a]).collect(),
            mac,
        };
        let r = shape.len();
        if r >= 2
            && dst.strides[r - 1] != 1
            && let Some(a) = (0..r - 1).find(|&a| dst.strides[a] == 1 && shape[a] > 1)
        {
            let mut order: Vec<usize> = (0..r).filter(|&i| i != a).collect();
            order.push(a);
            let permute = |v: &[isize]| -> Vec<isize> {
                order.iter().map(|&i| v[i]).chain(v[r..].iter().copied()).collect()
            };
            c.dst = Cow::Owned(View { strides: permute(&dst.strides), ..dst.clone() });
            c.shape = Cow::Owned(order.iter().map(|&i| shape[i]).collect());
            c.lhs.strides = permute(&c.lhs.strides);
            c.rhs.strides = permute(&c.rhs.strides);
        }
        c
    }

    fn dtype(&self) -> DType {
        self.dst.dtype
    }

    /// The operand on `side`.
    fn operand(&self, side: Side) -> &View {
        match side {
            Side::Lhs => &self.lhs,
            Side::Rhs => &self.rhs,
        }
    }
}

/// How to compute `s` (with its operands over the output's index space, `c`) under `policy`.
fn strategy(s: &DotStep, c: &Contraction<'_>, policy: &Policy) -> DotStrategy {
    let (shape, lv, rv, cdims, d) = (&c.shape[..], &c.lhs, &c.rhs, &c.cdims, c.dtype());
    if shape.contains(&0) {
        return DotStrategy::Empty;
    }
    if cdims.iter().product::<usize>() == 0 {
        return DotStrategy::Zeros;
    }
    if policy.gemm == GemmUse::Call
        && let Some(desc) = Descriptor::plan(s, true)
        && desc.is_large()
    {
        return DotStrategy::Runtime(Box::new(desc));
    }
    // A product repeated along output axes where neither operand moves (a broadcast, such as
    // a shared weight's W·Wᵀ spread over tokens): the runtime computes it once and copies it,
    // where the inline forms would recompute every copy.
    if policy.summation == Summation::Reassociate
        && let Some(desc) = Descriptor::plan(s, policy.gemm == GemmUse::Call)
        && desc.copies() >= REPLICATED_MIN_COPIES
        && desc.macs_with_copies() >= GEMM_THRESHOLD
    {
        return DotStrategy::Runtime(Box::new(desc));
    }
    // In order, a sum of more than BLOCK products is blocked pairwise: only `scalar_dot` does it.
    if policy.summation == Summation::InOrder
        && cdims.iter().product::<usize>() > jjt_ir::sum::BLOCK
    {
        return DotStrategy::Scalar;
    }
    let r = shape.len();
    let w = lanes(d);
    let last = r.saturating_sub(1);
    // Vector over the output's innermost axis: lanes are independent outputs.
    let out_vec = r > 0
        && d != DType::Bool
        && c.dst.strides[last] == 1
        && shape[last] >= w
        && matches!(lv.strides[last], 0 | 1)
        && matches!(rv.strides[last], 0 | 1);
    // Vector along the innermost contracted axis: a dot product of contiguous runs.
    let cl = (r + cdims.len()).saturating_sub(1);
    let k_vec = policy.summation == Summation::Reassociate
        && d != DType::Bool
        && !cdims.is_empty()
        && lv.strides[cl] == 1
        && rv.strides[cl] == 1
        && cdims[cdims.len() - 1] >= 2 * w;
    // A contraction whose inline form would sum more than INLINE_MAX_K terms in one sequence
    // (error growing like K): the runtime contraction, whose blocks of K combine pairwise.
    // Vectors over outputs sum all of K per output; vectors along the contraction spread it
    // over at least two vector accumulators (see `k_vec`), 2·lanes sequences.
    let k: usize = cdims.iter().product();
    let run = if !out_vec && k_vec { k.div_ceil(2 * w) } else { k };
    if policy.summation == Summation::Reassociate
        && run > INLINE_MAX_K
        && let Some(desc) = Descriptor::plan(s, policy.gemm == GemmUse::Call)
    {
        return DotStrategy::Runtime(Box::new(desc));
    }
    if out_vec {
        if cdims.len() == 1 && cdims[0] <= UNROLL_K {
            return DotStrategy::OutputVectors(Walk::Unrolled);
        }
        // A long contraction with one operand constant along the vector axis (a matrix
        // product's rows): register tiles of outputs.
        if lv.strides[last] == 0 && rv.strides[last] == 1 {
            return DotStrategy::RegisterTiles { splat: Side::Lhs };
        }
        if rv.strides[last] == 0 && lv.strides[last] == 1 {
            return DotStrategy::RegisterTiles { splat: Side::Rhs };
        }
        return DotStrategy::OutputVectors(Walk::Loop);
    }
    if k_vec {
        let block =
            (0..r).rev().find(|&a| shape[a] >= 2 && ((lv.strides[a] == 0) != (rv.strides[a] == 0)));
        return match block {
            Some(axis) => DotStrategy::MatrixVector { axis },
            None => DotStrategy::ContractionVectors,
        };
    }
    // No inline vector form: in fast mode the runtime contraction (its dot loops, or the
    // matrix multiply when large), never a scalar loop.
    if policy.summation == Summation::Reassociate
        && let Some(desc) = Descriptor::plan(s, policy.gemm == GemmUse::Call)
    {
        return DotStrategy::Runtime(Box::new(desc));
    }
    DotStrategy::Scalar
}

/// The runtime contraction's descriptor of contraction step `s` under `policy`, if that is
/// how it is computed (a fused step's contraction of one row: [`crate::fuse`] fuses only
/// those that take the matrix multiply).
pub(in crate::codegen) fn runtime_descriptor(
    s: &DotStep,
    policy: &Policy,
) -> Option<Box<Descriptor>> {
    match strategy(s, &Contraction::new(s, policy.mac), policy) {
        DotStrategy::Runtime(d) => Some(d),
        _ => None,
    }
}

/// Which path contraction step `s` takes under `policy`: the strategy's kind, the bytes it
/// packs, its products and blocks of K, whether it splits across threads (see [`DotPath`]).
/// This is the choice [`Cg::dot`] compiles, for the cost model and the tests.
pub(crate) fn dot_path(s: &DotStep, policy: &Policy) -> DotPath {
    let c = Contraction::new(s, policy.mac);
    strategy(s, &c, policy).path(s, policy.threads)
}

impl Cg<'_, '_> {
    /// A contraction step, computed as [`strategy`] chooses.
    pub(super) fn dot(&mut self, s: &DotStep) -> Result<(), JitError> {
        let c = Contraction::new(s, self.policy.mac);
        let how = strategy(s, &c, &self.policy);
        let r = c.shape.len();
        match &how {
            DotStrategy::Empty => return Ok(()),
            DotStrategy::Zeros => {
                let zeros = Expr::Scalar(0f64.to_bits(), c.dtype());
                return self.map(&MapStep {
                    dst: c.dst.clone().into_owned(),
                    shape: c.shape.to_vec(),
                    expr: zeros,
                });
            }
            DotStrategy::Runtime(desc) => self.runtime_call(s, desc)?,
            DotStrategy::OutputVectors(walk) => {
                self.vaxis = r - 1;
                self.out_vec(&c, *walk)?;
            }
            DotStrategy::RegisterTiles { splat } => {
                self.vaxis = r - 1;
                self.out_vec_tiles(&c, *splat)?;
            }
            DotStrategy::ContractionVectors => {
                self.vaxis = (r + c.cdims.len()).saturating_sub(1);
                self.k_vec(&c)?;
            }
            DotStrategy::MatrixVector { axis } => {
                self.vaxis = (r + c.cdims.len()).saturating_sub(1);
                self.k_vec_blocks(&c, *axis)?;
            }
            DotStrategy::Scalar => {
                // The interpreter's arithmetic: a rounded product, then a rounded sum.
                let c = Contraction { mac: Mac::Separate, ..c };
                let sacc = self.b.declare_var(scalar_ty(c.dtype()));
                self.for_each(&c.shape, &mut Vec::new(), &mut |cg, oidx| {
                    cg.scalar_dot(sacc, &c, oidx)
                })?;
            }
        }
        self.how = how.label();
        if let DotStrategy::Runtime(desc) = how {
            self.descriptors.push(desc);
        }
        Ok(())
    }

    /// `acc + x·y`, rounded as `m` says.
    fn mac(&mut self, m: Mac, acc: Value, x: Value, y: Value) -> Value {
        match m {
            Mac::Fused => self.b.ins().fma(x, y, acc),
            Mac::Separate => {
                let p = self.b.ins().fmul(x, y);
                self.b.ins().fadd(acc, p)
            }
        }
    }

    /// `acc += lhs[idx]·rhs[idx]` (in `mode`).
    fn mac_into(
        &mut self,
        acc: Variable,
        c: &Contraction<'_>,
        idx: &[Value],
        mode: Mode,
    ) -> Result<(), JitError> {
        let d = c.dtype();
        let x = self.eval(&Expr::Load(c.lhs.clone()), idx, mode, d)?;
        let y = self.eval(&Expr::Load(c.rhs.clone()), idx, mode, d)?;
        let a = self.b.use_var(acc);
        let a2 = self.mac(c.mac, a, x, y);
        self.b.def_var(acc, a2);
        Ok(())
    }

    /// One output element of a contraction, accumulated in the interpreter's order from -0.0
    /// (so the result equals the interpreter's "first product, then sums" bit for bit when
    /// the multiply-add is [`Mac::Separate`]): left to right up to
    /// [`BLOCK`](jjt_ir::sum::BLOCK) products, blocked pairwise beyond (`Cg::blocked_sum`,
    /// with a rounded product and a rounded sum per term).
    fn scalar_dot(
        &mut self,
        acc: Variable,
        c: &Contraction<'_>,
        oidx: &[Value],
    ) -> Result<(), JitError> {
        let d = c.dtype();
        let z = self.fconst(d, -0.0);
        if c.cdims.iter().product::<usize>() > jjt_ir::sum::BLOCK {
            let s = self.blocked_sum(scalar_ty(d), z, &c.cdims, &mut |cg, cidx| {
                let mut all = oidx.to_vec();
                all.extend_from_slice(cidx);
                let x = cg.eval(&Expr::Load(c.lhs.clone()), &all, Mode::Scalar, d)?;
                let y = cg.eval(&Expr::Load(c.rhs.clone()), &all, Mode::Scalar, d)?;
                Ok(cg.b.ins().fmul(x, y))
            })?;
            self.store(s, &c.dst, oidx);
            return Ok(());
        }
        self.b.def_var(acc, z);
        self.for_each(&c.cdims, &mut oidx.to_vec(), &mut |cg, all| {
            cg.mac_into(acc, c, all, Mode::Scalar)
        })?;
        let a = self.b.use_var(acc);
        self.store(a, &c.dst, oidx);
        Ok(())
    }
}
