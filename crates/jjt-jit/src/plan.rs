//! Planning: from a graph to a list of loop steps over strided buffers, independent of the
//! code generator.
//!
//! Every node's value is one of:
//! - a **view** of a buffer (input, output, arena slot or compile-time constant): an element
//!   offset and one stride per axis of the node's shape. `reshape` of a contiguous view,
//!   `transpose`, `slice` and `broadcast_to` produce views without moving data (broadcast axes
//!   have stride 0), so they cost nothing and are folded into the index arithmetic of whatever
//!   reads them;
//! - a **fused expression**: an elementwise node with one user that is itself a loop over the
//!   same index space is not stored; its expression is inlined into the user's loop (XLA-style
//!   loop fusion). Transposes and slices of fused expressions stay fused (their loads are
//!   remapped);
//! - a **scalar**: `full` constants are splatted where they are used.
//!
//! A `dot_general` that contracts nothing is an elementwise product over the output's axes and
//! is planned as one (so it fuses); a cheap fused expression reached through a `reshape` that
//! only adds or drops unit axes, or through a `broadcast_to`, stays fused (recomputed per copy).
//!
//! Everything else is **materialised** by a [`Step`] writing into a destination view.

use std::collections::HashMap;

use jjt_ir::ops::{Const, DotGeneral, Logic, Pad, ReduceKind};
use jjt_ir::{Binary, Compare, DType, Function, NodeId, Op, Shape, Unary};

pub use crate::matvec::{MatVec, MatVecStep};
use crate::{JitError, Options};

/// Where a buffer lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Buf {
    /// The function's input `i`.
    Input(usize),
    /// The function's output `i`.
    Output(usize),
    /// Scratch buffer `i` (placed in the arena by [`crate::arena`]).
    Scratch(usize),
    /// Compile-time constant `i`.
    Const(usize),
    /// The calling thread's buffer for one row of a [`FusedStep`]'s elementwise result.
    Row,
}

/// A strided view of a buffer, over some index space (one stride per axis, in elements).
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// The buffer.
    pub buf: Buf,
    /// Element offset of index 0.
    pub offset: isize,
    /// Element stride per axis.
    pub strides: Vec<isize>,
    /// Element type.
    pub dtype: DType,
}

impl View {
    fn contiguous(buf: Buf, shape: &Shape, dtype: DType) -> View {
        let strides = shape.strides().into_iter().map(|s| s as isize).collect();
        View { buf, offset: 0, strides, dtype }
    }

    fn is_contiguous(&self, shape: &Shape) -> bool {
        self.offset == 0
            && self
                .strides
                .iter()
                .zip(shape.strides())
                .zip(shape.dims())
                .all(|((&s, c), &d)| d <= 1 || s == c as isize)
    }
}

/// A scalar computation evaluated at every point of a loop's index space.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// Read a view at the current index.
    Load(View),
    /// A constant (f64 bits; f32 values widened exactly; bool 0/1).
    Scalar(u64, DType),
    /// Elementwise unary op.
    Unary(Unary, Box<Expr>),
    /// Elementwise binary op.
    Binary(Binary, Box<Expr>, Box<Expr>),
    /// Comparison (bool result).
    Compare(Compare, Box<Expr>, Box<Expr>, DType),
    /// `pred ? a : b`.
    Select(Box<Expr>, Box<Expr>, Box<Expr>),
    /// Conversion from the operand's dtype.
    Convert(DType, DType, Box<Expr>),
    /// A `gather`: `table` read at the current index (its strides over the output's axes,
    /// 0 along the index axes) plus `clamp(index, 0, rows − 1) · row_stride` elements: a
    /// data-dependent address. `index` is an `i32` expression over the same index space.
    Gather {
        /// The table, over the output's axes.
        table: View,
        /// Elements between consecutive rows of the indexed axis.
        row_stride: isize,
        /// Rows of the indexed axis (the clamp's bound).
        rows: usize,
        /// The row, before clamping.
        index: Box<Expr>,
    },
}

impl Expr {
    /// Apply `f` to every view this expression reads.
    pub fn views_mut(&mut self, f: &mut impl FnMut(&mut View)) {
        match self {
            Expr::Load(v) => f(v),
            Expr::Scalar(..) => {}
            Expr::Unary(_, a) | Expr::Convert(_, _, a) => a.views_mut(f),
            Expr::Binary(_, a, b) | Expr::Compare(_, a, b, _) => {
                a.views_mut(f);
                b.views_mut(f);
            }
            Expr::Select(p, a, b) => {
                p.views_mut(f);
                a.views_mut(f);
                b.views_mut(f);
            }
            Expr::Gather { table, index, .. } => {
                f(table);
                index.views_mut(f);
            }
        }
    }

    /// Every view this expression reads.
    pub fn views(&self) -> Vec<View> {
        let mut v = Vec::new();
        self.clone().views_mut(&mut |x| v.push(x.clone()));
        v
    }
}

/// An elementwise step: `dst[i] = expr(i)` for every `i` in `shape`.
#[derive(Clone, Debug, PartialEq)]
pub struct MapStep {
    /// Destination (strided: concat and pad write into sub-boxes).
    pub dst: View,
    /// Index space.
    pub shape: Vec<usize>,
    /// Value per element.
    pub expr: Expr,
}

/// A reduction: `dst[kept(i)] = reduce over the reduced axes of expr(i)`, `i` over `shape`
/// (the input's).
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceStep {
    /// Destination, contiguous over the kept axes.
    pub dst: View,
    /// The input's index space.
    pub shape: Vec<usize>,
    /// Reduced axes (sorted).
    pub axes: Vec<usize>,
    /// Sum, mean or max.
    pub kind: ReduceKind,
    /// Input value per element.
    pub expr: Expr,
}

/// A general contraction into a destination view (contiguous, except a convolution's, written
/// in its output layout).
#[derive(Clone, Debug, PartialEq)]
pub struct DotStep {
    /// Destination.
    pub dst: View,
    /// Output shape.
    pub shape: Vec<usize>,
    /// Left operand (strides over its own shape).
    pub lhs: View,
    /// Left operand's shape.
    pub lhs_shape: Vec<usize>,
    /// Right operand.
    pub rhs: View,
    /// Right operand's shape.
    pub rhs_shape: Vec<usize>,
    /// Axes.
    pub dims: DotGeneral,
}

/// A `scatter_add`: for every `i` in `shape` (the updates'), in row-major order,
/// `dst[i] + clamp(index(i), 0, rows − 1) · row_stride += updates(i)`, into a destination a
/// preceding step filled with zeros. One element at a time, on one thread, in the
/// interpreter's order, so results are bit-identical to it.
#[derive(Clone, Debug, PartialEq)]
pub struct ScatterStep {
    /// The destination, over the updates' axes (0 along the index axes).
    pub dst: View,
    /// The updates' index space.
    pub shape: Vec<usize>,
    /// Value added per element.
    pub updates: Expr,
    /// The row (an `i32` expression) before clamping.
    pub index: Expr,
    /// Elements between consecutive rows of the destination's indexed axis.
    pub row_stride: isize,
    /// Rows of the destination's indexed axis.
    pub rows: usize,
}

/// The step a [`FusedStep`] computes one row at a time into the row buffer.
#[derive(Clone, Debug, PartialEq)]
pub enum Producer {
    /// An elementwise step; its rows lie along its outermost axis.
    Map(MapStep),
    /// A contraction; its rows lie along the output axis `axis`.
    Dot {
        /// The contraction as planned.
        step: DotStep,
        /// The output axis along which its destination's rows lie.
        axis: usize,
    },
}

impl Producer {
    /// The destination, as planned (a scratch buffer no other step touches).
    pub fn dst(&self) -> &View {
        match self {
            Producer::Map(m) => &m.dst,
            Producer::Dot { step, .. } => &step.dst,
        }
    }

    /// Rows: the extent of the row axis.
    pub fn rows(&self) -> usize {
        match self {
            Producer::Map(m) => m.shape[0],
            Producer::Dot { step, axis } => step.shape[*axis],
        }
    }

    /// Every view it reads.
    pub fn reads(&self) -> Vec<View> {
        match self {
            Producer::Map(m) => m.expr.views(),
            Producer::Dot { step, .. } => vec![step.lhs.clone(), step.rhs.clone()],
        }
    }
}

/// A contraction's axis along which a fused operand's rows lie: a batch axis or a free axis
/// of that operand, as the operand's axis `op` and the output's axis `out`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowAxis {
    /// The axis in the operand's shape.
    pub op: usize,
    /// The axis in the output's shape.
    pub out: usize,
}

impl RowAxis {
    /// The output axis `out` of the contraction `d`, and the operand axes it comes from:
    /// `(lhs axis, rhs axis)`, one of them None for a free axis.
    pub fn operands_of(d: &DotStep, out: usize) -> (Option<usize>, Option<usize>) {
        let dims = &d.dims;
        let nb = dims.lhs_batch.len();
        let lfree = DotGeneral::free_axes(d.lhs_shape.len(), &dims.lhs_contract, &dims.lhs_batch);
        let rfree = DotGeneral::free_axes(d.rhs_shape.len(), &dims.rhs_contract, &dims.rhs_batch);
        if out < nb {
            (Some(dims.lhs_batch[out]), Some(dims.rhs_batch[out]))
        } else if out < nb + lfree.len() {
            (Some(lfree[out - nb]), None)
        } else {
            (None, Some(rfree[out - nb - lfree.len()]))
        }
    }
}

/// The contraction `d` restricted to index 0 of its output axis `out` (the axes feeding it
/// of extent 1), and the elements from one index to the next in (lhs, rhs, destination), 0
/// for an operand that does not move along it.
fn restrict(d: &DotStep, out: usize) -> (DotStep, (isize, isize, isize)) {
    let (la, ra) = RowAxis::operands_of(d, out);
    let mut s = d.clone();
    s.shape[out] = 1;
    let mut step = (0, 0, d.dst.strides[out]);
    if let Some(a) = la {
        s.lhs_shape[a] = 1;
        step.0 = d.lhs.strides[a];
    }
    if let Some(a) = ra {
        s.rhs_shape[a] = 1;
        step.1 = d.rhs.strides[a];
    }
    (s, step)
}

/// A step whose result only one contraction reads, run with it one row at a time
/// ([`crate::fuse`]): for each index `r` of the row axis, on the thread that takes it, row `r`
/// of the producer (an elementwise step or a contraction) is computed into that thread's row
/// buffer ([`Buf::Row`]) and the contraction's part of index `r` (its products along a batch
/// axis, or a slice of its output along a free axis of the fused operand) reads it there, so
/// the result never travels to memory and back.
#[derive(Clone, Debug, PartialEq)]
pub struct FusedStep {
    /// The producer, into a scratch buffer no other step touches.
    pub producer: Producer,
    /// The contraction as planned, reading the producer's destination as its lhs (`lhs`) or
    /// rhs.
    pub dot: DotStep,
    /// Whether the producer computes the contraction's lhs.
    pub lhs: bool,
    /// The contraction's axis along which the producer's rows lie.
    pub axis: RowAxis,
    /// Elements of one row of the producer's result.
    pub row_elems: usize,
}

impl FusedStep {
    /// Rows: the extent of the row axis.
    pub fn rows(&self) -> usize {
        self.producer.rows()
    }

    /// The elementwise producer of one row (its outermost index picks the row), into the row
    /// buffer; None for a contraction.
    pub fn row_map(&self) -> Option<MapStep> {
        let Producer::Map(m) = &self.producer else { return None };
        let mut strides = m.dst.strides.clone();
        strides[0] = 0;
        let dst = View { buf: Buf::Row, offset: 0, strides, dtype: m.dst.dtype };
        Some(MapStep { dst, ..m.clone() })
    }

    /// The contraction producer of row 0, into the row buffer, and the elements from row `r`
    /// to row `r + 1` of its (lhs, rhs, destination); None for an elementwise producer.
    pub fn row_producer(&self) -> Option<(DotStep, (isize, isize, isize))> {
        let Producer::Dot { step, axis } = &self.producer else { return None };
        let (mut s, (l, r, _)) = restrict(step, *axis);
        s.dst = View { buf: Buf::Row, offset: 0, ..s.dst };
        Some((s, (l, r, 0)))
    }

    /// The contraction of row 0 (the row axis of extent 1), its fused operand in the row
    /// buffer; [`FusedStep::row_strides`] advance the others to row `r`.
    pub fn row_dot(&self) -> DotStep {
        let (mut s, _) = restrict(&self.dot, self.axis.out);
        let fused = if self.lhs { &mut s.lhs } else { &mut s.rhs };
        *fused = View { buf: Buf::Row, offset: 0, ..fused.clone() };
        s
    }

    /// Elements from row `r` to row `r + 1` of the contraction's (lhs, rhs, destination), 0
    /// for the operand in the row buffer.
    pub fn row_strides(&self) -> (isize, isize, isize) {
        let (_, (l, r, dst)) = restrict(&self.dot, self.axis.out);
        if self.lhs { (0, r, dst) } else { (l, 0, dst) }
    }
}

/// One materialising loop nest.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Elementwise.
    Map(MapStep),
    /// Reduction.
    Reduce(ReduceStep),
    /// Contraction.
    Dot(DotStep),
    /// Sums into rows picked by indices.
    Scatter(ScatterStep),
    /// Matrix–vector products sharing their matrix, in one pass over it ([`crate::matvec`]).
    MatVecs(MatVecStep),
    /// An elementwise step and the one contraction that reads it, row by row.
    Fused(Box<FusedStep>),
}

impl Step {
    /// The views this step writes (one, but for [`Step::MatVecs`]: one per product).
    pub fn writes(&self) -> Vec<View> {
        match self {
            Step::Map(MapStep { dst, .. })
            | Step::Reduce(ReduceStep { dst, .. })
            | Step::Dot(DotStep { dst, .. })
            | Step::Scatter(ScatterStep { dst, .. }) => vec![dst.clone()],
            Step::MatVecs(m) => m.writes(),
            Step::Fused(f) => vec![f.dot.dst.clone()],
        }
    }

    /// Every view this step reads.
    pub fn reads(&self) -> Vec<View> {
        match self {
            Step::Map(MapStep { expr, .. }) | Step::Reduce(ReduceStep { expr, .. }) => expr.views(),
            Step::Dot(DotStep { lhs, rhs, .. }) => vec![lhs.clone(), rhs.clone()],
            Step::MatVecs(m) => m.reads(),
            Step::Fused(f) => {
                let mut v = f.producer.reads();
                v.push(if f.lhs { f.dot.rhs.clone() } else { f.dot.lhs.clone() });
                v
            }
            Step::Scatter(ScatterStep { updates, index, dst, .. }) => {
                let mut v = updates.views();
                v.extend(index.views());
                v.push(dst.clone());
                v
            }
        }
    }
}

/// The plan of a function: steps in execution order, scratch buffers, constants.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// Byte size of each scratch buffer.
    pub scratch: Vec<usize>,
    /// Constants, not yet evaluated: [`crate::compile_with`] generates each value once, into
    /// the compiled function, and planning alone (the cost model) allocates none of them.
    pub consts: Vec<Const>,
    /// For each step, the graph node whose value it computes (the node being planned when the
    /// step was made; a fused expression's nodes belong to the step of the node that stores
    /// it). `None` for the copies into output buffers.
    pub step_nodes: Vec<Option<NodeId>>,
}

#[derive(Clone, Debug)]
enum Val {
    View(View),
    Fused(Expr),
}

/// Apply an index remapping (transpose, slice) to a view, or to every view a fused expression
/// reads.
fn remap(val: Val, mut f: impl FnMut(&mut View)) -> Val {
    match val {
        Val::View(mut v) => {
            f(&mut v);
            Val::View(v)
        }
        Val::Fused(mut e) => {
            e.views_mut(&mut f);
            Val::Fused(e)
        }
    }
}

/// A fused expression over `from` re-indexed over `to` (a reshape), if every view it reads has
/// a strided view in the new shape ([`reshape_strides`]); `None` otherwise, and for a value
/// that is not a fused expression.
fn fused_reshape(val: &Val, from: &[usize], to: &[usize]) -> Option<Val> {
    if !matches!(val, Val::Fused(_)) {
        return None;
    }
    let mut ok = true;
    let out = remap(val.clone(), |v| match reshape_strides(from, &v.strides, to) {
        Some(strides) => v.strides = strides,
        None => ok = false,
    });
    ok.then_some(out)
}

/// The strides of a view of shape `to` over the same elements, in the same row-major order, as
/// the strided view `(from, strides)`, if one exists without copying: every group of `from`
/// axes merged into `to` axes must chain (`strides[a] = strides[a + 1] · from[a + 1]`);
/// splitting an axis always works. Axes of extent 1 take any stride (0 here).
pub(crate) fn reshape_strides(
    from: &[usize],
    strides: &[isize],
    to: &[usize],
) -> Option<Vec<isize>> {
    if from.contains(&0) || to.contains(&0) {
        return None;
    }
    let old: Vec<(usize, isize)> =
        from.iter().zip(strides).filter(|(d, _)| **d != 1).map(|(&d, &s)| (d, s)).collect();
    let new_axes: Vec<usize> = (0..to.len()).filter(|&i| to[i] != 1).collect();
    let mut out = vec![0isize; to.len()];
    let (mut oi, mut ni) = (0, 0);
    while ni < new_axes.len() && oi < old.len() {
        // The smallest run of old axes (oi..oj) and new axes (ni..nj) with equal sizes.
        let (mut oj, mut nj) = (oi + 1, ni + 1);
        let (mut op, mut np) = (old[oi].0, to[new_axes[ni]]);
        while op != np {
            if np < op {
                np *= to[*new_axes.get(nj)?];
                nj += 1;
            } else {
                op *= old.get(oj)?.0;
                oj += 1;
            }
        }
        if (oi..oj - 1).any(|k| old[k].1 != old[k + 1].1 * old[k + 1].0 as isize) {
            return None;
        }
        // The new axes split the innermost old stride.
        let mut st = old[oj - 1].1;
        for k in (ni..nj).rev() {
            out[new_axes[k]] = st;
            st *= to[new_axes[k]] as isize;
        }
        oi = oj;
        ni = nj;
    }
    (oi == old.len() && ni == new_axes.len()).then_some(out)
}

/// Whether `e`, over an index space of rank `r`, reads some view across its innermost axis
/// (a stride other than 0 and ±1: a gather per element).
fn gathers_innermost(e: &Expr, r: usize) -> bool {
    r > 0 && e.views().iter().any(|v| !matches!(v.strides[r - 1], -1..=1))
}

/// Whether a fused expression is cheap enough to recompute for every copy of a broadcast: at
/// most four nodes (loads, constants, arithmetic, comparisons) and no call to a
/// transcendental function.
fn cheap(e: &Expr) -> bool {
    fn count(e: &Expr) -> Option<usize> {
        Some(match e {
            Expr::Load(_) | Expr::Scalar(..) => 1,
            Expr::Unary(u, a) => {
                if crate::libm::Libm::unary_calls(*u) {
                    return None;
                }
                1 + count(a)?
            }
            Expr::Binary(op, a, b) => {
                if crate::libm::Libm::binary_calls(*op) {
                    return None;
                }
                1 + count(a)? + count(b)?
            }
            Expr::Compare(_, a, b, _) => 1 + count(a)? + count(b)?,
            Expr::Select(p, a, b) => 1 + count(p)? + count(a)? + count(b)?,
            Expr::Convert(_, _, a) => 1 + count(a)?,
            // A data-dependent load is not recomputed per copy.
            Expr::Gather { .. } => return None,
        })
    }
    count(e).is_some_and(|n| n <= 4)
}

struct Planner<'f> {
    f: &'f Function,
    vals: HashMap<NodeId, Val>,
    users: HashMap<NodeId, usize>,
    outputs: HashMap<NodeId, Vec<usize>>,
    /// Operands computed straight into their concatenation's or their pad's buffer
    /// ([`concat_slots`], [`pad_slots`]): the containing node and the operand's offset along
    /// the joined axis (0 for a pad, whose operand sits at its `lo`).
    slots: HashMap<NodeId, (NodeId, usize)>,
    /// The buffer of each concatenation or pad that holds operands in place, once allocated.
    concat_bufs: HashMap<NodeId, View>,
    /// Storage orders chosen for contractions' results ([`choose_layouts`]): the result's
    /// axes from outermost to innermost.
    layouts: HashMap<NodeId, Vec<usize>>,
    plan: Plan,
}

/// Bytes per element.
pub fn item_size(d: DType) -> usize {
    d.item_size()
}

/// Plan `f`.
pub fn plan(f: &Function) -> Result<Plan, JitError> {
    plan_for(f, &Options::default())
}

/// [`plan`] for the options `opts`: outside strict mode, a contraction whose result feeds one
/// other contraction may store it in another order of its axes, the one under which the
/// backend's cost model ([`crate::cost`], with its committed constants, so the choice does not
/// depend on the host) prices the two steps lowest (`choose_layouts`); and matrix–vector
/// products become [`Step::MatVecs`], two that share a matrix joined into one pass over it
/// ([`crate::matvec::join`]); and with the matrix multiply allowed, an elementwise step that
/// only one large contraction reads runs with it row by row ([`crate::fuse`]).
pub fn plan_for(f: &Function, opts: &Options) -> Result<Plan, JitError> {
    let first = plan_with(f, HashMap::new())?;
    if opts.strict {
        return Ok(first);
    }
    let layouts = choose_layouts(f, &first, opts);
    let mut p = if layouts.is_empty() { first } else { plan_with(f, layouts)? };
    crate::matvec::join(&mut p);
    if !opts.no_gemm {
        crate::fuse::rows(&mut p, opts);
    }
    Ok(p)
}

/// Storage orders for contractions' results, from a first plan: for each contraction `n`
/// whose result is a scratch buffer read by exactly one other contraction `u` (as one of its
/// operands, directly), the candidates are the orders that make `n` a direct operand of `u`
/// (its batch axes, then its free axes, then its contracted axes in the order of the other
/// operand's strides; or free axes first), each priced as the time of `n`'s step plus `u`'s;
/// an order is kept when it beats row-major by a tenth. A packed operand costs a strided copy
/// of all its elements per call (on the zoo's CNN a layer's patch-product step read a 42 MB
/// operand at 7 GFLOP/s through packing; stored in the order it is read, no copy is needed).
fn choose_layouts(f: &Function, first: &Plan, opts: &Options) -> HashMap<NodeId, Vec<usize>> {
    // The committed constants and their thread count, whatever the host and `opts.threads`:
    // the layout changes the order of a sum outside strict mode, and results must not depend
    // on the thread count.
    let t = crate::Throughputs::MEASURED;
    let threads = t.threads;
    let policy = crate::codegen::Policy {
        threads,
        ..crate::codegen::Policy::with_fma(&Options { threads, ..*opts }, true)
    };
    let price = |s: &DotStep| crate::cost::step_time(&Step::Dot(s.clone()), &policy, &t).seconds;
    let mut users: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for n in f.topo_order() {
        for o in f.operands(n) {
            users.entry(o).or_default().push(n);
        }
    }
    let dot_of = |n: NodeId| {
        first.step_nodes.iter().zip(&first.steps).find_map(|(sn, st)| match st {
            Step::Dot(d) if *sn == Some(n) => Some(d),
            _ => None,
        })
    };
    let mut out = HashMap::new();
    for n in f.topo_order() {
        let Some(s) = dot_of(n) else { continue };
        let [u] = users.get(&n).map_or(&[][..], Vec::as_slice) else { continue };
        if !matches!(s.dst.buf, Buf::Scratch(_)) || f.outputs().contains(&n) {
            continue;
        }
        let Some(t) = dot_of(*u) else { continue };
        let ops = f.operands(*u);
        let side = match (ops[0] == n, ops[1] == n) {
            (true, false) if t.lhs == s.dst => 0,
            (false, true) if t.rhs == s.dst => 1,
            _ => continue,
        };
        let d = &t.dims;
        let (batch, contract, other_contract, other) = if side == 0 {
            (&d.lhs_batch, &d.lhs_contract, &d.rhs_contract, &t.rhs)
        } else {
            (&d.rhs_batch, &d.rhs_contract, &d.lhs_contract, &t.lhs)
        };
        let rank = s.shape.len();
        let free: Vec<usize> =
            (0..rank).filter(|a| !batch.contains(a) && !contract.contains(a)).collect();
        let mut k: Vec<(usize, isize)> = contract
            .iter()
            .zip(other_contract)
            .map(|(&a, &o)| (a, other.strides[o].abs()))
            .collect();
        k.sort_by_key(|&(_, st)| std::cmp::Reverse(st));
        let k: Vec<usize> = k.into_iter().map(|(a, _)| a).collect();
        let candidates = [
            [batch.clone(), free.clone(), k.clone()].concat(),
            [free.clone(), batch.clone(), k].concat(),
        ];
        let base = price(s) + price(t);
        let mut best: Option<(f64, Vec<usize>)> = None;
        for order in candidates {
            let strides = order_strides(&s.shape, &order);
            let mut s2 = s.clone();
            s2.dst.strides = strides.clone();
            let mut t2 = t.clone();
            if side == 0 {
                t2.lhs.strides = strides;
            } else {
                t2.rhs.strides = strides;
            }
            let cost = price(&s2) + price(&t2);
            if cost < 0.9 * base && best.as_ref().is_none_or(|(c, _)| cost < *c) {
                best = Some((cost, order));
            }
        }
        if let Some((_, order)) = best {
            out.insert(n, order);
        }
    }
    out
}

/// Row-major strides of `shape` stored with its axes in `order` (outermost first).
fn order_strides(shape: &[usize], order: &[usize]) -> Vec<isize> {
    let mut strides = vec![0isize; shape.len()];
    let mut st = 1isize;
    for &a in order.iter().rev() {
        strides[a] = st;
        st *= shape[a] as isize;
    }
    strides
}

fn plan_with(f: &Function, layouts: HashMap<NodeId, Vec<usize>>) -> Result<Plan, JitError> {
    let order = f.topo_order();
    let mut users: HashMap<NodeId, usize> = HashMap::new();
    for &n in &order {
        for o in f.operands(n) {
            *users.entry(o).or_default() += 1;
        }
    }
    let mut outputs: HashMap<NodeId, Vec<usize>> = HashMap::new();
    for (k, &o) in f.outputs().iter().enumerate() {
        outputs.entry(o).or_default().push(k);
    }
    let mut slots = concat_slots(f, &order, &outputs);
    pad_slots(f, &order, &outputs, &mut slots);
    conv_slots(f, &order, &outputs, &mut slots);
    let mut p = Planner {
        f,
        vals: HashMap::new(),
        users,
        outputs,
        slots,
        concat_bufs: HashMap::new(),
        layouts,
        plan: Plan { steps: vec![], scratch: vec![], consts: vec![], step_nodes: vec![] },
    };
    for &n in &order {
        p.node(n)?;
        let made = p.plan.steps.len() - p.plan.step_nodes.len();
        p.plan.step_nodes.extend(std::iter::repeat_n(Some(n), made));
    }
    // Outputs whose value is not already in their output buffer get a copy.
    for (k, &o) in f.outputs().iter().enumerate() {
        let ty = p.ty(o).clone();
        let dst = View::contiguous(Buf::Output(k), &ty.shape, ty.dtype);
        let done = matches!(p.vals.get(&o), Some(Val::View(v)) if *v == dst);
        if !done {
            let expr = p.expr(o);
            p.plan.steps.push(Step::Map(MapStep { dst, shape: ty.shape.0.clone(), expr }));
        }
    }
    let made = p.plan.steps.len() - p.plan.step_nodes.len();
    p.plan.step_nodes.extend(std::iter::repeat_n(None, made));
    for s in &mut p.plan.steps {
        match s {
            Step::Map(m) => canonical_map(m),
            Step::Reduce(r) => canonical_reduce(r),
            Step::Dot(_) | Step::Scatter(_) | Step::MatVecs(_) | Step::Fused(_) => {}
        }
    }
    Ok(p.plan)
}

/// Bring a reduction's index space to a form the code generator runs on vectors, when the
/// innermost axis does not allow one (a view strided along it, or too short) but the last kept
/// or the last reduced axis does: that axis moves innermost. The kept axes keep their order
/// (the destination is indexed by them) and so do the reduced ones (each output's terms are
/// summed in the same order), so the results are the same bits in any summation mode; only
/// the loop nest changes. The last kept axis is preferred: vector lanes over outputs sum
/// each output in order, where vectors along a reduced axis reassociate (fast mode only).
/// A 2×2 average pooling in channels-last layout, reduced over its two innermost window axes of
/// 2, runs on vectors over its channels; a sum over tokens of a transposed Jacobian runs
/// along the tokens, contiguous in memory.
fn canonical_reduce(s: &mut ReduceStep) {
    let r = s.shape.len();
    if r < 2 {
        return;
    }
    let views = s.expr.views();
    let w = if s.dst.dtype == DType::F64 { 2 } else { 4 };
    let good = |a: usize| {
        let long = if s.axes.contains(&a) { s.shape[a] >= 2 * w } else { s.shape[a] >= w };
        long && views.iter().all(|v| matches!(v.strides[a], 0 | 1))
    };
    if good(r - 1) {
        return;
    }
    let last_kept = (0..r).rev().find(|a| !s.axes.contains(a));
    let last_reduced = s.axes.last().copied();
    let Some(a) = [last_kept, last_reduced].into_iter().flatten().find(|&a| a != r - 1 && good(a))
    else {
        return;
    };
    let order: Vec<usize> = (0..r).filter(|&i| i != a).chain([a]).collect();
    let permute = |v: &mut View| v.strides = order.iter().map(|&i| v.strides[i]).collect();
    s.expr.views_mut(&mut |v| permute(v));
    s.shape = order.iter().map(|&i| s.shape[i]).collect();
    let mut axes: Vec<usize> =
        s.axes.iter().map(|x| order.iter().position(|i| i == x).unwrap_or(0)).collect();
    axes.sort_unstable();
    s.axes = axes;
}

/// Bring an elementwise step's index space to the form the code generator runs fastest:
/// axes of extent 1 dropped; axes ordered by the destination's stride, largest first, so the
/// innermost loop writes contiguously (only when the step reads no view of the buffer it
/// writes: reordering the visits of a step that reads its own destination could change what
/// it reads); then each pair of adjacent axes after the first merged into one wherever every
/// view (destination and reads) steps through them as through one axis
/// (`stride[i] = stride[i+1]·extent[i+1]`). The first axis stays on its own, so a large step
/// keeps rows to share among threads. The same elements are computed from the same operands;
/// only the loop nest changes (a `[16, 10, 32, 2, 2]` upsampling runs on vectors of 4 instead
/// of scalars, a transposing copy writes its rows contiguously).
fn canonical_map(m: &mut MapStep) {
    let r = m.shape.len();
    if r == 0 {
        return;
    }
    let mut views: Vec<View> = m.expr.views();
    let aliased = views.iter().any(|v| v.buf == m.dst.buf);
    views.push(m.dst.clone());
    let mut axes: Vec<usize> = (0..r).filter(|&i| m.shape[i] != 1).collect();
    if axes.is_empty() {
        axes.push(0);
    }
    if !aliased {
        axes.sort_by_key(|&i| {
            std::cmp::Reverse(m.dst.strides.get(i).map_or(0, |s| s.unsigned_abs()))
        });
        // Above the innermost axis, the loops nest by how far all views (reads and the
        // destination) move along each axis together, farthest outermost: a step that reads
        // eight transposed Gram products into a kernel's layout walks each product's rows
        // forward instead of jumping between eighty rows at once.
        if let Some((_, outer)) = axes.split_last_mut() {
            outer.sort_by_key(|&i| {
                std::cmp::Reverse(views.iter().map(|v| v.strides[i].unsigned_abs()).sum::<usize>())
            });
        }
    }
    // Groups of original axes that become one axis each.
    let mut groups: Vec<Vec<usize>> = vec![vec![axes[0]]];
    for &i in &axes[1..] {
        let last = *groups.last().and_then(|g| g.last()).unwrap_or(&i);
        let chains = groups.len() > 1
            && views.iter().all(|v| v.strides[last] == v.strides[i] * m.shape[i] as isize);
        match groups.last_mut() {
            Some(g) if chains => g.push(i),
            _ => groups.push(vec![i]),
        }
    }
    if groups.len() == r && groups.iter().enumerate().all(|(k, g)| g == &[k]) {
        return;
    }
    let shape: Vec<usize> =
        groups.iter().map(|g| g.iter().map(|&i| m.shape[i]).product()).collect();
    let regroup = |v: &mut View| {
        v.strides = groups.iter().map(|g| v.strides[*g.last().unwrap_or(&0)]).collect();
    };
    regroup(&mut m.dst);
    m.expr.views_mut(&mut |v| regroup(v));
    m.shape = shape;
}

/// The operands of concatenations that can be computed in place, in their concatenation's
/// buffer: operands that are computed (not inputs or constants), not outputs, used by one
/// concatenation once, along an axis with only unit axes before it (so each part is a contiguous
/// block of the whole and every step writing it sees a contiguous destination).
fn concat_slots(
    f: &Function,
    order: &[NodeId],
    outputs: &HashMap<NodeId, Vec<usize>>,
) -> HashMap<NodeId, (NodeId, usize)> {
    let mut slots: HashMap<NodeId, (NodeId, usize)> = HashMap::new();
    let mut seen: HashMap<NodeId, usize> = HashMap::new();
    for &n in order {
        let Some(node) = f.node(n) else { continue };
        let Op::Concat(c) = &node.op else { continue };
        let ops = f.operands(n);
        for &o in &ops {
            *seen.entry(o).or_default() += 1;
        }
        if node.ty.shape.dims()[..c.axis].iter().product::<usize>() != 1 {
            continue;
        }
        let mut off = 0usize;
        for &o in &ops {
            let Some(on) = f.node(o) else { continue };
            let computed = !matches!(on.op, Op::Input(_) | Op::Const(_));
            if computed && !outputs.contains_key(&o) {
                slots.insert(o, (n, off));
            }
            off += on.ty.shape.dims()[c.axis];
        }
    }
    // An operand joined more than once (in one concatenation or several) keeps its own buffer.
    slots.retain(|o, _| seen.get(o) == Some(&1));
    slots
}

/// Operands of pads (without interior padding) computed straight into the pad's buffer, at
/// its `lo` corner: the pad then only zeroes its border, where it would zero the whole buffer
/// and copy the operand in. A convolution's cotangent, padded for the transposed convolution
/// and also read by the kernel gradient and the bias sum, is written once (the CNN's
/// second-layer input gradient copied its 160×16×16×64 cotangent twice per side). Operands
/// that are inputs, constants, outputs, already slotted, or padded more than once keep
/// their own buffer; so does one never materialised (a fused expression, which the pad's copy
/// computes in place anyway).
fn pad_slots(
    f: &Function,
    order: &[NodeId],
    outputs: &HashMap<NodeId, Vec<usize>>,
    slots: &mut HashMap<NodeId, (NodeId, usize)>,
) {
    let mut pads: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for &n in order {
        let Some(node) = f.node(n) else { continue };
        let Op::Pad(p) = &node.op else { continue };
        let Some(&o) = f.operands(n).first() else { continue };
        if p.interior.iter().all(|&i| i == 0) {
            pads.entry(o).or_default().push(n);
        } else {
            pads.entry(o).or_default().extend([n, n]);
        }
    }
    for (o, ps) in pads {
        let Some(on) = f.node(o) else { continue };
        let computed = !matches!(on.op, Op::Input(_) | Op::Const(_));
        if let [p] = ps[..]
            && computed
            && !outputs.contains_key(&o)
            && !slots.contains_key(&o)
        {
            slots.insert(o, (p, 0));
        }
    }
}

/// Inputs of convolutions that pad them (without dilation or negative padding), computed
/// straight into the convolution's padded copy: the node that computes the input (through
/// reshapes, which then view the same buffer) writes the copy's interior, and the convolution
/// only zeroes the border instead of zeroing all of it and copying the input in. The
/// transposed convolutions of a VJP pad every cotangent they read (the CNN's second-layer
/// input gradient zeroed and copied 160×18×18×64 elements per side). Inputs, constants,
/// outputs and nodes already slotted keep their own buffers, and a node behind several
/// convolutions is not slotted.
fn conv_slots(
    f: &Function,
    order: &[NodeId],
    outputs: &HashMap<NodeId, Vec<usize>>,
    slots: &mut HashMap<NodeId, (NodeId, usize)>,
) {
    let mut claims: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for &n in order {
        let Some(node) = f.node(n) else { continue };
        let Op::Conv(c) = &node.op else { continue };
        let pads = c.padding.iter().all(|&(lo, hi)| lo >= 0 && hi >= 0)
            && c.padding.iter().any(|&p| p != (0, 0));
        if !pads || c.lhs_dilation.iter().any(|&d| d != 1) {
            continue;
        }
        let Some(&x) = f.operands(n).first() else { continue };
        let mut m = x;
        while let Some(Op::Reshape(_)) = f.node(m).map(|v| &v.op) {
            m = f.operands(m)[0];
        }
        claims.entry(m).or_default().push(n);
    }
    for (m, cs) in claims {
        let Some(mn) = f.node(m) else { continue };
        let computed = !matches!(mn.op, Op::Input(_) | Op::Const(_) | Op::Reshape(_));
        if let [c] = cs[..]
            && computed
            && !outputs.contains_key(&m)
            && !slots.contains_key(&m)
        {
            slots.insert(m, (c, 0));
        }
    }
}

/// The shape of convolution `c`'s input `xd` padded (each spatial axis longer by its
/// padding, which `conv_slots` admits only non-negative), and the padding before each axis.
fn padded(c: &jjt_ir::ops::Conv, xd: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let (mut dims, mut lo) = (xd.to_vec(), vec![0usize; xd.len()]);
    for (j, &(l, h)) in c.padding.iter().enumerate() {
        let a = c.dims.lhs[2 + j];
        dims[a] += (l + h) as usize;
        lo[a] = l as usize;
    }
    (dims, lo)
}

/// Whether views `v` and `w` of a value of shape `dims` address the same elements (strides
/// along unit axes do not matter).
fn same_place(v: &View, w: &View, dims: &[usize]) -> bool {
    v.buf == w.buf
        && v.offset == w.offset
        && v.dtype == w.dtype
        && dims.iter().enumerate().all(|(a, &d)| d <= 1 || v.strides[a] == w.strides[a])
}

/// The view of a pad's operand inside the pad's buffer `whole`: from the `lo` corner, every
/// `interior + 1`-th element along each axis.
fn pad_interior(whole: &View, p: &Pad) -> View {
    let mut sub = whole.clone();
    for a in 0..p.lo.len() {
        sub.offset += p.lo[a] as isize * whole.strides[a];
        sub.strides[a] = whole.strides[a] * (p.interior[a] as isize + 1);
    }
    sub
}

impl<'f> Planner<'f> {
    fn ty(&self, n: NodeId) -> &jjt_ir::TensorType {
        &self.f.node(n).expect("planned nodes exist").ty
    }

    /// The expression reading `n` at the current index of a loop over `n`'s shape.
    fn expr(&self, n: NodeId) -> Expr {
        match &self.vals[&n] {
            Val::View(v) => Expr::Load(v.clone()),
            Val::Fused(e) => e.clone(),
        }
    }

    /// A view of `n`, materialising it first if it is a fused expression.
    fn view(&mut self, n: NodeId) -> View {
        match self.vals[&n].clone() {
            Val::View(v) => v,
            Val::Fused(e) => {
                let v = self.materialise(n, e);
                self.vals.insert(n, Val::View(v.clone()));
                v
            }
        }
    }

    /// A fresh destination for `n`: its first output buffer if it is an output (and that
    /// buffer is not taken yet), else a new scratch buffer.
    fn destination(&mut self, n: NodeId) -> View {
        let ty = self.ty(n).clone();
        if let Some(ks) = self.outputs.get(&n) {
            return View::contiguous(Buf::Output(ks[0]), &ty.shape, ty.dtype);
        }
        if let Some(&(c, off)) = self.slots.get(&n) {
            return match &self.f.node(c).expect("planned nodes exist").op {
                Op::Concat(cc) => {
                    let whole = self.concat_buffer(c);
                    let mut part = View::contiguous(whole.buf, &ty.shape, ty.dtype);
                    part.offset = whole.offset + off as isize * whole.strides[cc.axis];
                    part
                }
                Op::Pad(p) => pad_interior(&self.concat_buffer(c), p),
                Op::Conv(_) => {
                    // The convolution's input (this node through reshapes) at the padded
                    // copy's `lo` corner, viewed in this node's shape.
                    let (x, inner) = self.conv_interior(c);
                    match reshape_strides(self.ty(x).shape.dims(), &inner.strides, ty.shape.dims())
                    {
                        Some(strides) => View { strides, ..inner },
                        None => self.scratch(&ty),
                    }
                }
                _ => unreachable!("slots point at concatenations, pads and convolutions"),
            };
        }
        self.scratch(&ty)
    }

    /// A new scratch buffer holding a value of type `ty`, row-major.
    fn scratch(&mut self, ty: &jjt_ir::TensorType) -> View {
        self.plan.scratch.push(ty.numel() * item_size(ty.dtype));
        View::contiguous(Buf::Scratch(self.plan.scratch.len() - 1), &ty.shape, ty.dtype)
    }

    /// Convolution `c`'s padded copy of its input (allocated on first use, row-major in the
    /// input's own axis order, each spatial axis longer by its padding), and the view of the
    /// input inside it: the convolution's input node and its interior view.
    fn conv_interior(&mut self, c: NodeId) -> (NodeId, View) {
        let node = self.f.node(c).expect("planned nodes exist");
        let Op::Conv(conv) = &node.op else { unreachable!("a convolution") };
        let x = self.f.operands(c)[0];
        let xt = self.ty(x).clone();
        let (dims, lo) = padded(conv, xt.shape.dims());
        let whole = match self.concat_bufs.get(&c) {
            Some(v) => v.clone(),
            None => {
                let v = self.scratch(&jjt_ir::TensorType::new(xt.dtype, dims));
                self.concat_bufs.insert(c, v.clone());
                v
            }
        };
        let mut inner = whole.clone();
        inner.offset += lo.iter().zip(&whole.strides).map(|(&l, &s)| l as isize * s).sum::<isize>();
        (x, inner)
    }

    /// The buffer of concatenation `c`, allocated on first use (by `c` or by an operand
    /// computed in place).
    fn concat_buffer(&mut self, c: NodeId) -> View {
        if let Some(v) = self.concat_bufs.get(&c) {
            return v.clone();
        }
        let v = self.destination(c);
        self.concat_bufs.insert(c, v.clone());
        v
    }

    fn materialise(&mut self, n: NodeId, expr: Expr) -> View {
        let dst = self.destination(n);
        let shape = self.ty(n).shape.0.clone();
        self.plan.steps.push(Step::Map(MapStep { dst: dst.clone(), shape, expr }));
        dst
    }

    /// Keep an elementwise result fused if it has one user and is not an output.
    fn fuse_or_store(&mut self, n: NodeId, expr: Expr) {
        let single =
            self.users.get(&n).copied().unwrap_or(0) == 1 && !self.outputs.contains_key(&n);
        let v = if single { Val::Fused(expr) } else { Val::View(self.materialise(n, expr)) };
        self.vals.insert(n, v);
    }

    fn node(&mut self, n: NodeId) -> Result<(), JitError> {
        let node = self.f.node(n).expect("planned nodes exist").clone();
        let ops = self.f.operands(n);
        let ty = node.ty.clone();
        match &node.op {
            Op::Input(i) => {
                self.vals.insert(
                    n,
                    Val::View(View::contiguous(Buf::Input(i.index), &ty.shape, ty.dtype)),
                );
            }
            Op::Const(c) => match c {
                Const::Full { bits, .. } => {
                    let e = Expr::Scalar(*bits, ty.dtype);
                    if self.outputs.contains_key(&n) {
                        let v = self.materialise(n, e);
                        self.vals.insert(n, Val::View(v));
                    } else {
                        self.vals.insert(n, Val::Fused(e));
                    }
                }
                other => {
                    self.plan.consts.push(other.clone());
                    let v = View::contiguous(
                        Buf::Const(self.plan.consts.len() - 1),
                        &ty.shape,
                        ty.dtype,
                    );
                    self.vals.insert(n, Val::View(v));
                }
            },
            Op::Unary(u) => {
                let e = Expr::Unary(*u, Box::new(self.expr(ops[0])));
                self.fuse_or_store(n, e);
            }
            Op::Binary(b) => {
                let e = Expr::Binary(*b, Box::new(self.expr(ops[0])), Box::new(self.expr(ops[1])));
                self.fuse_or_store(n, e);
            }
            Op::Compare(c) => {
                let d = self.ty(ops[0]).dtype;
                let e =
                    Expr::Compare(*c, Box::new(self.expr(ops[0])), Box::new(self.expr(ops[1])), d);
                self.fuse_or_store(n, e);
            }
            // Logic as selects between bool constants: `and(p, q) = p ? q : false`,
            // `or(p, q) = p ? true : q`, `not(p) = p ? false : true`.
            Op::Logic(l) => {
                let t = || Box::new(Expr::Scalar(1f64.to_bits(), DType::Bool));
                let f = || Box::new(Expr::Scalar(0, DType::Bool));
                let p = Box::new(self.expr(ops[0]));
                let e = match l {
                    Logic::And => Expr::Select(p, Box::new(self.expr(ops[1])), f()),
                    Logic::Or => Expr::Select(p, t(), Box::new(self.expr(ops[1]))),
                    Logic::Not => Expr::Select(p, f(), t()),
                };
                self.fuse_or_store(n, e);
            }
            Op::Select(_) => {
                let e = Expr::Select(
                    Box::new(self.expr(ops[0])),
                    Box::new(self.expr(ops[1])),
                    Box::new(self.expr(ops[2])),
                );
                self.fuse_or_store(n, e);
            }
            Op::Convert(c) => {
                let from = self.ty(ops[0]).dtype;
                let e = Expr::Convert(from, c.to, Box::new(self.expr(ops[0])));
                self.fuse_or_store(n, e);
            }
            Op::Reduce(r) => {
                let shape = self.ty(ops[0]).shape.0.clone();
                let expr = self.expr(ops[0]);
                let dst = self.destination(n);
                self.plan.steps.push(Step::Reduce(ReduceStep {
                    dst: dst.clone(),
                    shape,
                    axes: r.axes.clone(),
                    kind: r.kind,
                    expr,
                }));
                self.vals.insert(n, Val::View(dst));
            }
            Op::DotGeneral(d) if d.lhs_contract.is_empty() && ty.dtype != DType::Bool => {
                // Nothing contracted: every output is one product, an elementwise multiply of
                // the operands laid over the output's axes (batch, lhs free, rhs free). So it
                // is planned as one, fused into its user (a sum of such products becomes one
                // loop). An operand the output repeats (it lacks some output axis) is stored
                // first, as for a broadcast, so a fused expression is not recomputed per copy.
                let out_numel = ty.numel();
                let (nb, out_rank) = (d.lhs_batch.len(), ty.shape.rank());
                let lfree = DotGeneral::free_axes(
                    self.ty(ops[0]).shape.rank(),
                    &d.lhs_contract,
                    &d.lhs_batch,
                );
                let rfree = DotGeneral::free_axes(
                    self.ty(ops[1]).shape.rank(),
                    &d.rhs_contract,
                    &d.rhs_batch,
                );
                let mut side = |o: NodeId, batch: &[usize], free: &[usize], start: usize| {
                    let val = if self.ty(o).numel() == out_numel {
                        self.vals[&o].clone()
                    } else {
                        Val::View(self.view(o))
                    };
                    let over_output = |v: &mut View| {
                        let mut strides = vec![0isize; out_rank];
                        for (k, &a) in batch.iter().enumerate() {
                            strides[k] = v.strides[a];
                        }
                        for (j, &a) in free.iter().enumerate() {
                            strides[start + j] = v.strides[a];
                        }
                        v.strides = strides;
                    };
                    match remap(val, over_output) {
                        Val::View(v) => Expr::Load(v),
                        Val::Fused(e) => e,
                    }
                };
                let lhs = side(ops[0], &d.lhs_batch, &lfree, nb);
                let rhs = side(ops[1], &d.rhs_batch, &rfree, nb + lfree.len());
                self.fuse_or_store(n, Expr::Binary(Binary::Mul, Box::new(lhs), Box::new(rhs)));
            }
            Op::DotGeneral(d) => {
                let lhs = self.view(ops[0]);
                let rhs = self.view(ops[1]);
                let mut dst = self.destination(n);
                if let Some(order) = self.layouts.get(&n)
                    && matches!(dst.buf, Buf::Scratch(_))
                    && !self.slots.contains_key(&n)
                {
                    dst.strides = order_strides(ty.shape.dims(), order);
                }
                self.plan.steps.push(Step::Dot(DotStep {
                    dst: dst.clone(),
                    shape: ty.shape.0.clone(),
                    lhs,
                    lhs_shape: self.ty(ops[0]).shape.0.clone(),
                    rhs,
                    rhs_shape: self.ty(ops[1]).shape.0.clone(),
                    dims: d.clone(),
                }));
                self.vals.insert(n, Val::View(dst));
            }
            Op::Reshape(_)
                if let Some(val) = fused_reshape(
                    &self.vals[&ops[0]],
                    self.ty(ops[0]).shape.dims(),
                    ty.shape.dims(),
                ) =>
            {
                // A fused expression every view of which has a strided view in the new shape
                // (unit axes inserted or removed, axes split, or merged where they chain)
                // stays fused, its loads re-indexed.
                self.layout_result(n, val);
            }
            Op::Reshape(_) => {
                // A reshape of contiguous data is the same buffer; so is one of a strided view
                // whose merged axes chain (`reshape_strides`).
                let src_shape = self.ty(ops[0]).shape.clone();
                let v = self.view(ops[0]);
                let v = if v.is_contiguous(&src_shape) {
                    View::contiguous(v.buf, &ty.shape, ty.dtype)
                } else if let Some(strides) =
                    reshape_strides(src_shape.dims(), &v.strides, ty.shape.dims())
                {
                    View { strides, ..v }
                } else {
                    // Copy to contiguous scratch, then reinterpret.
                    let tmp = self.copy_contiguous(v, &src_shape);
                    View::contiguous(tmp.buf, &ty.shape, ty.dtype)
                };
                self.layout_result(n, Val::View(v));
            }
            Op::Transpose(t) => {
                let val = remap(self.vals[&ops[0]].clone(), |v| {
                    v.strides = t.perm.iter().map(|&p| v.strides[p]).collect();
                });
                self.layout_result(n, val);
            }
            Op::Slice(s) => {
                let val = remap(self.vals[&ops[0]].clone(), |v| {
                    for (a, st) in v.strides.iter_mut().enumerate() {
                        v.offset += s.start[a] as isize * *st;
                        *st *= s.step[a] as isize;
                    }
                });
                self.layout_result(n, val);
            }
            Op::BroadcastTo(bc)
                if matches!(&self.vals[&ops[0]], Val::Fused(e) if cheap(e)
                    && !(bc.shape.numel() >= 2 * self.ty(ops[0]).numel()
                        && gathers_innermost(e, self.ty(ops[0]).rank()))) =>
            {
                // A cheap fused expression (a comparison of stored values, say: a relu's mask)
                // is recomputed per copy rather than stored: cheaper than a pass writing it,
                // and a stored bool mask would keep the loops reading it off vectors.
                let from = self.ty(ops[0]).shape.clone();
                let lead = bc.shape.rank() - from.rank();
                let val = remap(self.vals[&ops[0]].clone(), |v| {
                    let mut strides = vec![0isize; lead];
                    for (a, &d) in from.dims().iter().enumerate() {
                        strides.push(if d == 1 { 0 } else { v.strides[a] });
                    }
                    v.strides = strides;
                });
                self.layout_result(n, val);
            }
            Op::BroadcastTo(bc) => {
                let from = self.ty(ops[0]).shape.clone();
                let mut v = self.view(ops[0]);
                // A strided source (a transpose, a slice) that the broadcast reads many times
                // is copied once into contiguous order, so the loops reading the broadcast
                // run along unit strides (and vectorise) instead of gathering every element.
                // So is a cheap fused expression that reads across its innermost axis (a
                // scaled transpose: a pool's upsampled cotangent read from a convolution's
                // NCHW result), stored by `view` above in its own row-major order.
                if bc.shape.numel() >= 2 * from.numel() && !v.is_contiguous(&from) {
                    v = self.copy_contiguous(v, &from);
                }
                let lead = bc.shape.rank() - from.rank();
                let mut strides = vec![0isize; lead];
                for (a, &d) in from.dims().iter().enumerate() {
                    strides.push(if d == 1 { 0 } else { v.strides[a] });
                }
                v.strides = strides;
                self.layout_result(n, Val::View(v));
            }
            Op::Concat(c) => {
                let dst = self.concat_buffer(n);
                let mut off = 0usize;
                for &o in &ops {
                    let shape = self.ty(o).shape.0.clone();
                    let mut sub = dst.clone();
                    sub.offset += off as isize * dst.strides[c.axis];
                    off += shape[c.axis];
                    let expr = self.expr(o);
                    // An operand computed in place (see `concat_slots`) is already there.
                    let in_place = matches!(&expr, Expr::Load(v) if v.buf == sub.buf
                        && v.offset == sub.offset
                        && shape.iter().enumerate().all(|(a, &d)| d <= 1 || v.strides[a] == sub.strides[a]));
                    if shape.contains(&0) || in_place {
                        continue;
                    }
                    self.plan.steps.push(Step::Map(MapStep { dst: sub, shape, expr }));
                }
                self.vals.insert(n, Val::View(dst));
            }
            Op::Reverse(r) => {
                let dims = self.ty(ops[0]).shape.0.clone();
                let val = remap(self.vals[&ops[0]].clone(), |v| {
                    for &a in &r.axes {
                        if dims[a] > 0 {
                            v.offset += (dims[a] as isize - 1) * v.strides[a];
                        }
                        v.strides[a] = -v.strides[a];
                    }
                });
                self.layout_result(n, val);
            }
            Op::Conv(c) => self.conv(n, c, &ops),
            // The identity (its zero derivative only matters to differentiation).
            Op::StopGradient(_) => {
                let val = self.vals[&ops[0]].clone();
                self.layout_result(n, val);
            }
            Op::Patches(pt) => {
                // A view with overlapping strides: positions advance `strides`, taps `dilation`
                // (of a stored operand: a fused one would be recomputed per tap).
                let stored = Val::View(self.view(ops[0]));
                let val = remap(stored, |v| {
                    let base = v.strides.clone();
                    for (j, &a) in pt.axes.iter().enumerate() {
                        v.strides[a] = base[a] * pt.strides[j] as isize;
                    }
                    for (j, &a) in pt.axes.iter().enumerate() {
                        v.strides.push(base[a] * pt.dilation[j] as isize);
                    }
                });
                self.layout_result(n, val);
            }
            Op::Gather(g) => {
                // table [P, rows, R] read over the output [P, Q, R]: its strides with 0s for
                // Q, the indexed axis's stride applied to the loaded row; the indices (fused
                // or stored) read over the output with 0s for P and R.
                let k = self.ty(ops[1]).rank();
                let rows = self.ty(ops[0]).shape.dims()[g.axis];
                let mut table = self.view(ops[0]);
                let row_stride = table.strides[g.axis];
                let mut strides = table.strides[..g.axis].to_vec();
                strides.extend(std::iter::repeat_n(0, k));
                strides.extend_from_slice(&table.strides[g.axis + 1..]);
                table.strides = strides;
                let rest = ty.rank() - g.axis - k;
                let index = self.spread(ops[1], g.axis, rest);
                self.fuse_or_store(
                    n,
                    Expr::Gather { table, row_stride, rows, index: Box::new(index) },
                );
            }
            Op::ScatterAdd(s) => {
                let dst = self.destination(n);
                self.plan.steps.push(Step::Map(MapStep {
                    dst: dst.clone(),
                    shape: ty.shape.0.clone(),
                    expr: Expr::Scalar(0, ty.dtype),
                }));
                let shape = self.ty(ops[1]).shape.0.clone();
                let k = self.ty(ops[0]).rank();
                let rest = shape.len() - s.axis - k;
                let mut over = dst.clone();
                let mut strides = dst.strides[..s.axis].to_vec();
                strides.extend(std::iter::repeat_n(0, k));
                strides.extend_from_slice(&dst.strides[s.axis + 1..]);
                over.strides = strides;
                let index = self.spread(ops[0], s.axis, rest);
                let updates = self.expr(ops[1]);
                self.plan.steps.push(Step::Scatter(ScatterStep {
                    dst: over,
                    shape,
                    updates,
                    index,
                    row_stride: dst.strides[s.axis],
                    rows: s.size,
                }));
                self.vals.insert(n, Val::View(dst));
            }
            Op::Pad(pad) => {
                let dst = self.concat_buffer(n);
                let sub = pad_interior(&dst, pad);
                let shape = self.ty(ops[0]).shape.0.clone();
                let expr = self.expr(ops[0]);
                // An operand computed in place (see `pad_slots`) is already there: only the
                // border is zeroed, one box per side of each padded axis (corners twice).
                let in_place = matches!(&expr, Expr::Load(v) if same_place(v, &sub, &shape));
                if in_place {
                    let dims = ty.shape.dims();
                    for a in 0..dims.len() {
                        for (at, len) in [(0, pad.lo[a]), (pad.lo[a] + shape[a], pad.hi[a])] {
                            if len == 0 {
                                continue;
                            }
                            let mut bx = dst.clone();
                            bx.offset += at as isize * dst.strides[a];
                            let mut bshape = dims.to_vec();
                            bshape[a] = len;
                            let expr = Expr::Scalar(0, ty.dtype);
                            self.plan.steps.push(Step::Map(MapStep {
                                dst: bx,
                                shape: bshape,
                                expr,
                            }));
                        }
                    }
                } else {
                    self.plan.steps.push(Step::Map(MapStep {
                        dst: dst.clone(),
                        shape: ty.shape.0.clone(),
                        expr: Expr::Scalar(0, ty.dtype),
                    }));
                    self.plan.steps.push(Step::Map(MapStep { dst: sub, shape, expr }));
                }
                self.vals.insert(n, Val::View(dst));
            }
        }
        Ok(())
    }

    /// The expression of `n` read over a larger index space: `before` new axes in front and
    /// `after` behind (stride 0 along each).
    fn spread(&self, n: NodeId, before: usize, after: usize) -> Expr {
        let val = remap(self.vals[&n].clone(), |v| {
            let mut strides = vec![0isize; before];
            strides.extend_from_slice(&v.strides);
            strides.extend(std::iter::repeat_n(0, after));
            v.strides = strides;
        });
        match val {
            Val::View(v) => Expr::Load(v),
            Val::Fused(e) => e,
        }
    }

    /// A convolution as one contraction (see `docs/format.md`, "conv"): the input, dilated and
    /// padded into a scratch buffer when the convolution dilates or pads it, is read through a
    /// view of its patches — `[group, batch, features, output positions…, window taps…]`, the
    /// taps overlapping — against the kernel viewed as `[group, outputs, features, taps…]`,
    /// contracting taps (outer) and features (inner), the order of the interpreter's sum. The
    /// runtime contraction packs the patches (im2col) for the matrix multiply. The product
    /// `[group, batch, positions…, outputs]` is written through a view of the destination in
    /// its own layout when batch and positions chain there (one matrix dimension), else into
    /// scratch and copied.
    fn conv(&mut self, n: NodeId, c: &jjt_ir::ops::Conv, ops: &[NodeId]) {
        let ty = self.ty(n).clone();
        let (xt, kt) = (self.ty(ops[0]).clone(), self.ty(ops[1]).clone());
        let (xd, kd, yd) = (xt.shape.dims(), kt.shape.dims(), ty.shape.dims());
        let s = c.dims.spatial();
        let x = self.view(ops[0]);
        let k = self.view(ops[1]);
        let canon = |v: &View, d: &[usize], perm: &[usize]| -> (Vec<isize>, Vec<usize>) {
            (perm.iter().map(|&a| v.strides[a]).collect(), perm.iter().map(|&a| d[a]).collect())
        };
        let (xs, xdims) = canon(&x, xd, &c.dims.lhs);
        let (ks, kdims) = canon(&k, kd, &c.dims.rhs);
        let dilate = |d: usize, f: usize| if d == 0 { 0 } else { (d - 1) * f + 1 };
        // The dilated, padded input [N, C, P…] (a view of `x` itself when neither applies).
        let plain =
            c.lhs_dilation.iter().all(|&d| d == 1) && c.padding.iter().all(|&p| p == (0, 0));
        // The input computed in place (see `conv_slots`): zero the copy's border only.
        let in_place = !plain && self.concat_bufs.contains_key(&n) && {
            let (_, inner) = self.conv_interior(n);
            same_place(&x, &inner, xd)
        };
        let (src, ss) = if plain {
            (x.clone(), xs.clone())
        } else if in_place {
            let whole = self.concat_bufs[&n].clone();
            let full = self.ty(ops[0]).shape.0.clone();
            let (dims, _) = padded(c, &full);
            for (j, &(l, h)) in c.padding.iter().enumerate() {
                let a = c.dims.lhs[2 + j];
                for (at, len) in [(0, l as usize), (l as usize + full[a], h as usize)] {
                    if len == 0 {
                        continue;
                    }
                    let mut bx = whole.clone();
                    bx.offset += at as isize * whole.strides[a];
                    let mut shape = dims.clone();
                    shape[a] = len;
                    let expr = Expr::Scalar(0, ty.dtype);
                    self.plan.steps.push(Step::Map(MapStep { dst: bx, shape, expr }));
                }
            }
            let canon: Vec<isize> = c.dims.lhs.iter().map(|&a| whole.strides[a]).collect();
            (View { strides: canon.clone(), ..whole }, canon)
        } else {
            let mut pdims = vec![xdims[0], xdims[1]];
            for j in 0..s {
                let (lo, hi) = c.padding[j];
                let p = dilate(xdims[2 + j], c.lhs_dilation[j]) as i64 + lo + hi;
                pdims.push(p.max(0) as usize);
            }
            // The padded input is stored in the order of the input's memory (channels stay
            // innermost when the input is channels-last, whatever the dimension numbers say:
            // a VJP's convolution often reads a transposed view), viewed in canonical order.
            // The patches' contracted axes then read runs of contiguous features.
            let r = pdims.len();
            let mut by_stride: Vec<usize> = (0..r).collect();
            by_stride.sort_by_key(|&j| std::cmp::Reverse(xs[j].unsigned_abs()));
            let mut place = vec![0; r];
            for (pos, &j) in by_stride.iter().enumerate() {
                place[j] = pos;
            }
            let mut ldims = vec![0; r];
            for (j, &a) in place.iter().enumerate() {
                ldims[a] = pdims[j];
            }
            let lshape = Shape(ldims.clone());
            self.plan.scratch.push(lshape.numel() * item_size(ty.dtype));
            let whole =
                View::contiguous(Buf::Scratch(self.plan.scratch.len() - 1), &lshape, ty.dtype);
            self.plan.steps.push(Step::Map(MapStep {
                dst: whole.clone(),
                shape: ldims.clone(),
                expr: Expr::Scalar(0, ty.dtype),
            }));
            let mut buf = whole.clone();
            buf.strides = place.iter().map(|&a| whole.strides[a]).collect();
            // Input element i lands at lo + i·ld; keep those inside [0, P).
            let (mut dst, mut from, mut count) = (buf.clone(), x.clone(), vec![xdims[0], xdims[1]]);
            dst.strides = buf.strides.clone();
            from.strides = xs.clone();
            let mut empty = false;
            for j in 0..s {
                let (lo, ld, p) = (c.padding[j].0, c.lhs_dilation[j] as i64, pdims[2 + j] as i64);
                let first = if lo >= 0 { 0 } else { (-lo + ld - 1) / ld };
                let last = (xdims[2 + j] as i64 - 1).min((p - 1 - lo).div_euclid(ld));
                if last < first {
                    empty = true;
                    break;
                }
                count.push((last - first + 1) as usize);
                from.offset += first as isize * xs[2 + j];
                dst.offset += (lo + first * ld) as isize * buf.strides[2 + j];
                dst.strides[2 + j] = buf.strides[2 + j] * ld as isize;
            }
            if !empty && count.iter().all(|&d| d > 0) {
                // The copy runs in the input's layout order (unit strides innermost).
                let inv: Vec<usize> =
                    (0..r).map(|a| place.iter().position(|&x| x == a).unwrap_or(a)).collect();
                let lay = |v: &View| View {
                    strides: inv.iter().map(|&j| v.strides[j]).collect(),
                    ..v.clone()
                };
                let shape = inv.iter().map(|&j| count[j]).collect();
                self.plan.steps.push(Step::Map(MapStep {
                    dst: lay(&dst),
                    shape,
                    expr: Expr::Load(lay(&from)),
                }));
            }
            (buf.clone(), buf.strides.clone())
        };
        let nb = xdims[0];
        let (o, i) = (kdims[0], kdims[1]);
        let (g, bg) = (c.feature_groups, c.batch_groups);
        let grp = g.max(bg);
        let nq = nb / bg;
        let out_sp: Vec<usize> = c.dims.out[2..].iter().map(|&a| yd[a]).collect();
        let win: Vec<usize> = kdims[2..].to_vec();
        // Patches: [grp, N/bg, I, out…, taps…].
        let mut pv = src.clone();
        let mut pshape = vec![grp, nq, i];
        let grp_stride = if bg > 1 { nq as isize * ss[0] } else { i as isize * ss[1] };
        pv.strides = vec![if grp > 1 { grp_stride } else { 0 }, ss[0], ss[1]];
        for j in 0..s {
            pshape.push(out_sp[j]);
            pv.strides.push(c.strides[j] as isize * ss[2 + j]);
        }
        for j in 0..s {
            pshape.push(win[j]);
            pv.strides.push(c.rhs_dilation[j] as isize * ss[2 + j]);
        }
        // Kernel: [grp, O/grp, I, taps…].
        let mut kv = k.clone();
        let per = o / grp.max(1);
        kv.strides = vec![if grp > 1 { per as isize * ks[0] } else { 0 }, ks[0], ks[1]];
        kv.strides.extend(&ks[2..]);
        let mut kshape = vec![grp, per, i];
        kshape.extend(&win);
        let dims = DotGeneral {
            lhs_contract: (3 + s..3 + 2 * s).chain([2]).collect(),
            rhs_contract: (3..3 + s).chain([2]).collect(),
            lhs_batch: vec![0],
            rhs_batch: vec![0],
        };
        let mut dshape = vec![grp, nq];
        dshape.extend(&out_sp);
        dshape.push(per);
        // The destination viewed as the product's axes.
        let dst = self.destination(n);
        let (os, _) = canon(&dst, yd, &c.dims.out);
        let mut dview = dst.clone();
        dview.strides = vec![if grp > 1 { per as isize * os[1] } else { 0 }, os[0]];
        dview.strides.extend(&os[2..]);
        dview.strides.push(os[1]);
        // The product goes straight into the destination's layout (the runtime contraction
        // takes any destination strides) when its batch and positions axes chain there, so
        // they stay one matrix dimension; else into scratch in product order, then copied.
        let m_axes: Vec<(usize, isize)> = (1..dshape.len() - 1)
            .map(|a| (dshape[a], dview.strides[a]))
            .filter(|&(d, _)| d > 1)
            .collect();
        let chains = m_axes.windows(2).all(|w| w[0].1 == w[1].1 * w[1].0 as isize);
        let target = if chains {
            dview.clone()
        } else {
            let dshape_s = Shape(dshape.clone());
            self.plan.scratch.push(dshape_s.numel() * item_size(ty.dtype));
            View::contiguous(Buf::Scratch(self.plan.scratch.len() - 1), &dshape_s, ty.dtype)
        };
        self.plan.steps.push(Step::Dot(DotStep {
            dst: target.clone(),
            shape: dshape.clone(),
            lhs: pv,
            lhs_shape: pshape,
            rhs: kv,
            rhs_shape: kshape,
            dims,
        }));
        if !chains {
            self.plan.steps.push(Step::Map(MapStep {
                dst: dview,
                shape: dshape,
                expr: Expr::Load(target),
            }));
        }
        self.vals.insert(n, Val::View(dst));
    }

    /// Copy a strided view into a new contiguous scratch buffer of `shape`.
    fn copy_contiguous(&mut self, v: View, shape: &Shape) -> View {
        let bytes = shape.numel() * item_size(v.dtype);
        self.plan.scratch.push(bytes);
        let tmp = View::contiguous(Buf::Scratch(self.plan.scratch.len() - 1), shape, v.dtype);
        self.plan.steps.push(Step::Map(MapStep {
            dst: tmp.clone(),
            shape: shape.0.clone(),
            expr: Expr::Load(v),
        }));
        tmp
    }

    /// A layout op's result: a view or remapped expression, materialised into its output
    /// buffer if it is an output (handled at the end) — nothing to do here but record it.
    fn layout_result(&mut self, n: NodeId, val: Val) {
        // A fused expression reached through a layout op with several users is stored once,
        // unless it is a constant (a broadcast scalar, such as average pooling's 1/4 spread
        // over a cotangent: stored, a pass writing 5 MB per side of the zoo's CNN, 0.7 ms).
        let val = match val {
            Val::Fused(e)
                if (self.users.get(&n).copied().unwrap_or(0) != 1
                    && !matches!(e, Expr::Scalar(..)))
                    || self.outputs.contains_key(&n) =>
            {
                Val::View(self.materialise(n, e))
            }
            v => v,
        };
        self.vals.insert(n, val);
    }
}

#[cfg(test)]
mod tests {
    use jjt_ir::{Binary, DType};

    use super::{Buf, Expr, MapStep, View, canonical_map, reshape_strides};

    /// Offsets of every element, in row-major order, of the view `(dims, strides)`.
    fn offsets(dims: &[usize], strides: &[isize]) -> Vec<isize> {
        let n: usize = dims.iter().product();
        let mut idx = vec![0usize; dims.len()];
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(idx.iter().zip(strides).map(|(&i, &s)| i as isize * s).sum());
            for a in (0..dims.len()).rev() {
                idx[a] += 1;
                if idx[a] < dims[a] {
                    break;
                }
                idx[a] = 0;
            }
        }
        out
    }

    /// A reshape view, where one exists, reads the same elements in the same order as the
    /// view it reshapes; where the merged axes do not chain there is none.
    #[test]
    fn reshape_views_read_the_same_elements() {
        // (base dims, permutation giving a transposed view of contiguous storage, to, a view?)
        type Case = (&'static [usize], &'static [usize], &'static [usize], bool);
        let cases: &[Case] = &[
            (&[2, 3, 4], &[0, 1, 2], &[6, 4], true),
            (&[2, 3, 4], &[1, 0, 2], &[3, 2, 4], true),
            (&[2, 3, 4], &[1, 0, 2], &[3, 2, 2, 2], true),
            (&[2, 3, 4], &[1, 0, 2], &[3, 8], false),
            (&[2, 3, 4], &[1, 0, 2], &[6, 4], false),
            (&[4, 3, 5], &[0, 2, 1], &[2, 2, 5, 3], true),
            (&[4, 1, 3, 5], &[0, 1, 3, 2], &[4, 5, 1, 3], true),
            (&[4, 3, 5], &[2, 0, 1], &[5, 12], true),
            (&[4, 3, 5], &[2, 0, 1], &[60], false),
        ];
        for &(base, perm, to, view) in cases {
            let contiguous = jjt_ir::Shape(base.to_vec()).strides();
            let dims: Vec<usize> = perm.iter().map(|&p| base[p]).collect();
            let strides: Vec<isize> = perm.iter().map(|&p| contiguous[p] as isize).collect();
            let got = reshape_strides(&dims, &strides, to);
            assert_eq!(got.is_some(), view, "{dims:?} {strides:?} -> {to:?}");
            if let Some(s) = got {
                assert_eq!(offsets(to, &s), offsets(&dims, &strides), "{dims:?} -> {to:?}");
            }
        }
    }

    /// The (destination, reads) offsets of every element of a map, sorted: the elements it
    /// computes, from which operands, whatever the loop order.
    fn visits(m: &MapStep) -> Vec<Vec<isize>> {
        let mut views = vec![m.dst.clone()];
        views.extend(m.expr.views());
        let per: Vec<Vec<isize>> = views.iter().map(|v| offsets(&m.shape, &v.strides)).collect();
        let mut out: Vec<Vec<isize>> =
            (0..per[0].len()).map(|i| per.iter().map(|o| o[i]).collect()).collect();
        out.sort_unstable();
        out
    }

    /// A kernel's final sum `K[b,b',o,o'] = Σ G[b,o,b',o']·P[b,b']` (two Gram products read
    /// transposed, one row-pair weight): its loops nest as the reads move, (b, o, b', o'), so
    /// each product's rows are walked forward, and the innermost axis stays the destination's
    /// contiguous one. The same elements from the same operands as before.
    #[test]
    fn map_loops_nest_as_their_reads_move() {
        let view = |buf, strides: &[isize]| View {
            buf,
            offset: 0,
            strides: strides.to_vec(),
            dtype: DType::F32,
        };
        let gram = |i| Expr::Load(view(Buf::Scratch(i), &[3200, 10, 320, 1]));
        let weight = Expr::Load(view(Buf::Scratch(2), &[32, 1, 0, 0]));
        let term = |i| Expr::Binary(Binary::Mul, Box::new(gram(i)), Box::new(weight.clone()));
        let m = MapStep {
            dst: view(Buf::Output(0), &[3200, 100, 10, 1]),
            shape: vec![32, 32, 10, 10],
            expr: Expr::Binary(Binary::Add, Box::new(term(0)), Box::new(term(1))),
        };
        let mut c = m.clone();
        canonical_map(&mut c);
        assert_eq!(c.shape, [32, 10, 32, 10]);
        assert_eq!(c.dst.strides, [3200, 10, 100, 1]);
        assert_eq!(visits(&c), visits(&m));

        // A step that reads its own destination keeps its order.
        let mut own = m.clone();
        own.expr = Expr::Binary(
            Binary::Add,
            Box::new(Expr::Load(view(Buf::Output(0), &[3200, 100, 10, 1]))),
            Box::new(term(0)),
        );
        let mut c = own.clone();
        canonical_map(&mut c);
        assert_eq!(c.shape, own.shape);
    }
}
