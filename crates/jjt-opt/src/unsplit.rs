//! Joined twins: `concat(f(a₁, b₁, …), f(a₂, b₂, …))` along an axis, where every operand pair
//! joins in turn, becomes `f(concat(a₁, a₂), concat(b₁, b₂), …)` computed once, without the
//! inner concatenations; the parts' other users read slices of the joined result.
//!
//! A pair `(p, q)` joins along an axis when:
//! - both are slices of one value with unit steps, equal elsewhere, adjacent along the axis
//!   (the joined value is one slice: for the halves of a product joined by `siblings`, the
//!   product itself);
//! - both are splats of one value, or broadcasts of one value along the axis (the joined value
//!   is the same splat or broadcast, longer);
//! - both apply the same elementwise op (unary, binary, compare, select, convert), and every
//!   operand pair joins;
//! - both broadcast, or reshape, values that join along the axis that becomes this one
//!   (unchanged axes before it, so the parts stay contiguous blocks).
//!
//! Why: `siblings` evaluates both sides' products with a shared weight as one product of twice
//! the rows, then slices it back, and the layer's elementwise work runs on each side's slice
//! (bias, relu, its mask, the backward pass's relu select) before the next joined product
//! concatenates the sides again: two steps where one would do, and in the backward pass two
//! threaded steps of 20 480 elements each. Joined, every layer's elementwise work is one step.
//!
//! Preserves: values bit for bit (every element is the same op on the same operands).

use std::collections::HashMap;

use jjt_ir::ops::{Concat, Const, Slice};
use jjt_ir::{Function, FunctionBuilder, IrError, NodeId, Op, Shape};

/// A pair of parts joined along an axis (the first part comes first).
type Pair = (NodeId, NodeId, usize);

/// Join twin parts of `f`'s two-part concatenations; returns the new function and how many
/// concatenations were replaced.
pub fn unsplit(f: &Function) -> Result<(Function, usize), IrError> {
    let mut a = Analysis { f, memo: HashMap::new() };
    // Concatenations whose parts join, and the parts (with other users) to read as halves.
    let mut tops: HashMap<NodeId, Pair> = HashMap::new();
    let mut halves: HashMap<NodeId, (Pair, bool)> = HashMap::new();
    for n in f.topo_order() {
        let Some(node) = f.node(n) else { continue };
        let Op::Concat(Concat { axis }) = node.op else { continue };
        let ops = f.operands(n);
        if ops.len() != 2 || !a.joins(ops[0], ops[1], axis) {
            continue;
        }
        let pair = (ops[0], ops[1], axis);
        tops.insert(n, pair);
        a.members(pair, &mut halves);
    }
    if tops.is_empty() {
        return Ok((f.clone(), 0));
    }
    let mut b = FunctionBuilder::new(f.name.clone());
    let mut r = crate::replay_inputs(f, &mut b)?;
    let mut built: HashMap<Pair, NodeId> = HashMap::new();
    r.run(
        &mut b,
        |_| true,
        |b, v| {
            let mut j = Joiner { f, b, built: &mut built, get: &|o| v.get(o) };
            if let Some(&pair) = tops.get(&v.id) {
                return j.join(pair);
            }
            if let Some(&(pair, second)) = halves.get(&v.id) {
                let joined = j.join(pair)?;
                return j.half(joined, pair, second);
            }
            v.copy(b)
        },
    )?;
    Ok((b.finish_many(r.outputs()?)?.pruned(), tops.len()))
}

struct Analysis<'f> {
    f: &'f Function,
    memo: HashMap<Pair, bool>,
}

impl Analysis<'_> {
    /// Whether `p` and `q` (in this order) join along `axis`.
    fn joins(&mut self, p: NodeId, q: NodeId, axis: usize) -> bool {
        if let Some(&j) = self.memo.get(&(p, q, axis)) {
            return j;
        }
        let j = self.check(p, q, axis);
        self.memo.insert((p, q, axis), j);
        j
    }

    fn check(&mut self, p: NodeId, q: NodeId, axis: usize) -> bool {
        let f = self.f;
        let (Some(pn), Some(qn)) = (f.node(p), f.node(q)) else { return false };
        let (pd, qd) = (pn.ty.shape.dims(), qn.ty.shape.dims());
        let same_but_axis = pn.ty.dtype == qn.ty.dtype
            && pd.len() == qd.len()
            && axis < pd.len()
            && (0..pd.len()).all(|i| i == axis || pd[i] == qd[i]);
        if !same_but_axis {
            return false;
        }
        if p == q {
            return match &pn.op {
                Op::Const(Const::Full { .. }) => true,
                Op::BroadcastTo(_) => broadcast_axis(f, p, axis).is_none(),
                _ => false,
            };
        }
        let (po, qo) = (f.operands(p), f.operands(q));
        match (&pn.op, &qn.op) {
            (Op::Slice(s), Op::Slice(t)) => {
                po[0] == qo[0]
                    && s.step.iter().chain(&t.step).all(|&x| x == 1)
                    && s.stop[axis] == t.start[axis]
                    && (0..pd.len())
                        .all(|i| i == axis || (s.start[i] == t.start[i] && s.stop[i] == t.stop[i]))
            }
            (Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select(_) | Op::Convert(_), _)
                if pn.op == qn.op =>
            {
                po.iter().zip(&qo).all(|(&x, &y)| self.joins(x, y, axis))
            }
            (Op::Const(Const::Full { bits: x, .. }), Op::Const(Const::Full { bits: y, .. })) => {
                x == y
            }
            (Op::BroadcastTo(_), Op::BroadcastTo(_)) => {
                match (broadcast_axis(f, p, axis), broadcast_axis(f, q, axis)) {
                    (Some(a), Some(b)) if a == b => self.joins(po[0], qo[0], a),
                    (None, None) => po[0] == qo[0],
                    _ => false,
                }
            }
            (Op::Reshape(_), Op::Reshape(_)) => {
                match (reshape_axis(f, p, axis), reshape_axis(f, q, axis)) {
                    (Some(a), Some(b)) if a == b => self.joins(po[0], qo[0], a),
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// Record the parts under a joined pair that other nodes may read: each computed pair
    /// (elementwise, broadcast or reshape of two values) reads as halves of the joined value.
    fn members(&self, pair: Pair, out: &mut HashMap<NodeId, (Pair, bool)>) {
        let (p, q, axis) = pair;
        if p == q {
            return;
        }
        let f = self.f;
        let Some(pn) = f.node(p) else { return };
        if matches!(pn.op, Op::Slice(_)) {
            return;
        }
        out.entry(p).or_insert((pair, false));
        out.entry(q).or_insert((pair, true));
        let inner = match &pn.op {
            Op::BroadcastTo(_) => broadcast_axis(f, p, axis),
            Op::Reshape(_) => reshape_axis(f, p, axis),
            _ => Some(axis),
        };
        let Some(inner) = inner else { return };
        for (x, y) in f.operands(p).into_iter().zip(f.operands(q)) {
            self.members((x, y, inner), out);
        }
    }
}

/// For `broadcast_to(x, S)` at node `n`: the axis of `x` that becomes S's `axis`, or `None`
/// when S's `axis` is broadcast (a new leading axis, or one of extent 1 in `x`).
fn broadcast_axis(f: &Function, n: NodeId, axis: usize) -> Option<usize> {
    let x = *f.operands(n).first()?;
    let (xd, sd) = (f.node(x)?.ty.shape.dims().to_vec(), f.node(n)?.ty.shape.dims().to_vec());
    let lead = sd.len() - xd.len();
    (axis >= lead && xd[axis - lead] == sd[axis]).then(|| axis - lead)
}

/// For `reshape(x, T)` at node `n`: the axis of `x` that becomes T's `axis` with the same
/// extent and the same axes before it, so that a concatenation along it commutes with the
/// reshape; `None` otherwise.
fn reshape_axis(f: &Function, n: NodeId, axis: usize) -> Option<usize> {
    let x = *f.operands(n).first()?;
    let (xd, td) = (f.node(x)?.ty.shape.dims().to_vec(), f.node(n)?.ty.shape.dims().to_vec());
    (axis < xd.len() && xd[..axis] == td[..axis] && xd[axis] == td[axis]).then_some(axis)
}

struct Joiner<'a, 'f> {
    f: &'f Function,
    b: &'a mut FunctionBuilder,
    built: &'a mut HashMap<Pair, NodeId>,
    /// The new node of a source node already replayed.
    get: &'a dyn Fn(NodeId) -> Result<NodeId, IrError>,
}

impl Joiner<'_, '_> {
    /// The joined value of a pair that joins, built once.
    fn join(&mut self, pair: Pair) -> Result<NodeId, IrError> {
        if let Some(&n) = self.built.get(&pair) {
            return Ok(n);
        }
        let (p, q, axis) = pair;
        let f = self.f;
        let pn = f.node(p).ok_or(IrError::UnknownNode(p))?;
        let qn = f.node(q).ok_or(IrError::UnknownNode(q))?;
        let mut dims = pn.ty.shape.dims().to_vec();
        dims[axis] += qn.ty.shape.dims()[axis];
        let shape = Shape(dims.clone());
        let (po, qo) = (f.operands(p), f.operands(q));
        let n = match &pn.op {
            Op::Const(Const::Full { ty, bits }) => {
                self.b.constant(Const::Full { ty: ty.with_shape(dims), bits: *bits })?
            }
            Op::BroadcastTo(_) if broadcast_axis(f, p, axis).is_none() => {
                // The same value broadcast along the axis in both parts.
                let x = (self.get)(po[0])?;
                self.b.broadcast_to(x, &shape)?
            }
            Op::Slice(s) => {
                let Op::Slice(t) = &qn.op else { return Err(IrError::UnknownNode(q)) };
                let mut stop = s.stop.clone();
                stop[axis] = t.stop[axis];
                let x = (self.get)(po[0])?;
                self.b.add(
                    Op::Slice(Slice { start: s.start.clone(), stop, step: s.step.clone() }),
                    &[x],
                )?
            }
            Op::BroadcastTo(_) => {
                let inner = broadcast_axis(f, p, axis).ok_or(IrError::UnknownNode(p))?;
                let x = self.join((po[0], qo[0], inner))?;
                self.b.broadcast_to(x, &shape)?
            }
            Op::Reshape(_) => {
                let inner = reshape_axis(f, p, axis).ok_or(IrError::UnknownNode(p))?;
                let x = self.join((po[0], qo[0], inner))?;
                self.b.reshape(x, shape)?
            }
            op => {
                let xs = po
                    .iter()
                    .zip(&qo)
                    .map(|(&x, &y)| self.join((x, y, axis)))
                    .collect::<Result<Vec<_>, _>>()?;
                self.b.add(op.clone(), &xs)?
            }
        };
        self.built.insert(pair, n);
        Ok(n)
    }

    /// The first (or second) part of a joined value.
    fn half(&mut self, joined: NodeId, pair: Pair, second: bool) -> Result<NodeId, IrError> {
        let (p, _, axis) = pair;
        let dims = self.b.ty(joined)?.shape.dims().to_vec();
        let first = self.f.node(p).ok_or(IrError::UnknownNode(p))?.ty.shape.dims()[axis];
        let mut start = vec![0; dims.len()];
        let mut stop = dims.clone();
        if second {
            start[axis] = first;
        } else {
            stop[axis] = first;
        }
        self.b.slice(joined, &start, &stop, &vec![1; dims.len()])
    }
}
