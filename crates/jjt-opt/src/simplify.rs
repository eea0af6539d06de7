//! IEEE-safe algebraic simplification: named rules, each counted when it fires. Only
//! rewrites that give the same bits for every input are allowed: `x·1`, `x/1`, `x + (−0)`,
//! `x − (+0)`, `−(−x)`, `select(p, x, x)`, compositions of layout ops, and a contraction of a
//! broadcast along axes it does not contract computed before the broadcast
//! (`dot_of_broadcast`: each element is the same sum of the same products; the transposed
//! cotangent of a mean over tokens, broadcast over the tokens, times a weight, is the
//! zoo's case). Rewrites that do
//! not hold for every IEEE value are absent on purpose: `x·0 → 0` (wrong for inf and NaN),
//! `x − x → 0` (NaN), `x + 0 → x` (wrong for −0).
//!
//! Preserves: values bit for bit.

use std::collections::BTreeMap;

use jjt_ir::ops::{BroadcastTo, Const, DotGeneral, Reshape, Slice, Transpose};
use jjt_ir::{Binary, Function, FunctionBuilder, IrError, NodeId, Op, Unary};

/// Hits per rule name.
pub type RuleHits = BTreeMap<&'static str, usize>;

fn full_value(b: &FunctionBuilder, n: NodeId) -> Option<f64> {
    match b.op(n).ok()? {
        Op::Const(Const::Full { bits, .. }) => Some(f64::from_bits(*bits)),
        _ => None,
    }
}

/// Try every rule on `op` applied to `xs` (nodes of `b`); the replacement node if one fires.
fn rewrite(
    b: &mut FunctionBuilder,
    op: &Op,
    xs: &[NodeId],
    hits: &mut RuleHits,
) -> Result<Option<NodeId>, IrError> {
    let mut hit = |name: &'static str| *hits.entry(name).or_insert(0) += 1;
    let same_bits = |v: Option<f64>, w: f64| v.is_some_and(|v| v.to_bits() == w.to_bits());
    Ok(match op {
        Op::Binary(Binary::Mul) if same_bits(full_value(b, xs[1]), 1.0) => {
            hit("mul_by_one");
            Some(xs[0])
        }
        Op::Binary(Binary::Mul) if same_bits(full_value(b, xs[0]), 1.0) => {
            hit("mul_by_one");
            Some(xs[1])
        }
        Op::Binary(Binary::Div) if same_bits(full_value(b, xs[1]), 1.0) => {
            hit("div_by_one");
            Some(xs[0])
        }
        Op::Binary(Binary::Add) if same_bits(full_value(b, xs[1]), -0.0) => {
            hit("add_negative_zero");
            Some(xs[0])
        }
        Op::Binary(Binary::Add) if same_bits(full_value(b, xs[0]), -0.0) => {
            hit("add_negative_zero");
            Some(xs[1])
        }
        Op::Binary(Binary::Sub) if same_bits(full_value(b, xs[1]), 0.0) => {
            hit("sub_zero");
            Some(xs[0])
        }
        Op::Unary(Unary::Neg) => match b.op(xs[0])? {
            Op::Unary(Unary::Neg) => {
                hit("neg_neg");
                b_operand(b, xs[0])?
            }
            _ => None,
        },
        Op::Select(_) if xs[1] == xs[2] => {
            hit("select_same_branches");
            Some(xs[1])
        }
        Op::Transpose(Transpose { perm }) => {
            if perm.iter().enumerate().all(|(i, &p)| i == p) {
                hit("identity_transpose");
                Some(xs[0])
            } else if let Op::Transpose(Transpose { perm: inner }) = b.op(xs[0])?.clone() {
                hit("transpose_of_transpose");
                let x = b_operand(b, xs[0])?.unwrap_or(xs[0]);
                let composed: Vec<usize> = perm.iter().map(|&p| inner[p]).collect();
                Some(b.transpose(x, &composed)?)
            } else {
                None
            }
        }
        Op::Reshape(Reshape { shape }) => {
            if b.ty(xs[0])?.shape == *shape {
                hit("identity_reshape");
                Some(xs[0])
            } else if let Op::Reshape(_) = b.op(xs[0])? {
                hit("reshape_of_reshape");
                let x = b_operand(b, xs[0])?.unwrap_or(xs[0]);
                Some(b.reshape(x, shape.clone())?)
            } else {
                None
            }
        }
        Op::BroadcastTo(BroadcastTo { shape }) => {
            if b.ty(xs[0])?.shape == *shape {
                hit("identity_broadcast");
                Some(xs[0])
            } else if let Op::BroadcastTo(_) = b.op(xs[0])? {
                hit("broadcast_of_broadcast");
                let x = b_operand(b, xs[0])?.unwrap_or(xs[0]);
                Some(b.broadcast_to(x, shape)?)
            } else {
                None
            }
        }
        Op::DotGeneral(d) => {
            let r = dot_of_broadcast(b, d, xs)?;
            if r.is_some() {
                hit("dot_of_broadcast");
            }
            r
        }
        Op::Slice(Slice { start, stop, step }) => {
            let dims = b.ty(xs[0])?.shape.0.clone();
            let whole =
                start.iter().all(|&s| s == 0) && *stop == dims && step.iter().all(|&s| s == 1);
            if whole {
                hit("identity_slice");
                Some(xs[0])
            } else {
                None
            }
        }
        _ => None,
    })
}

/// `dot_general(broadcast_to(x), y)` (either side) where the broadcast expands only axes the
/// contraction neither contracts nor pairs as batch axes: the contraction of `x` (those axes
/// kept at size 1), broadcast afterwards. Each element of the result is the same sum of the
/// same products as before, in the same order; the work drops by the broadcast's factor.
fn dot_of_broadcast(
    b: &mut FunctionBuilder,
    d: &DotGeneral,
    xs: &[NodeId],
) -> Result<Option<NodeId>, IrError> {
    let mut operands = [xs[0], xs[1]];
    let sides = [(&d.lhs_contract, &d.lhs_batch), (&d.rhs_contract, &d.rhs_batch)];
    for (side, (contract, batch)) in sides.into_iter().enumerate() {
        let Op::BroadcastTo(BroadcastTo { shape }) = b.op(xs[side])?.clone() else { continue };
        let Some(x) = b_operand(b, xs[side])? else { continue };
        let from = b.ty(x)?.shape.0.clone();
        let to = shape.dims();
        let lead = to.len() - from.len();
        let expanded = |a: usize| a < lead || (from[a - lead] == 1 && to[a] != 1);
        let paired = |a: usize| contract.contains(&a) || batch.contains(&a);
        if (0..to.len()).any(|a| expanded(a) && paired(a)) {
            continue;
        }
        let kept: Vec<usize> =
            (0..to.len()).map(|a| if a < lead { 1 } else { from[a - lead] }).collect();
        operands[side] = if lead > 0 { b.reshape(x, kept)? } else { x };
    }
    if operands == [xs[0], xs[1]] {
        return Ok(None);
    }
    let (l, r) = (b.ty(xs[0])?.shape.0.clone(), b.ty(xs[1])?.shape.0.clone());
    let lfree = DotGeneral::free_axes(l.len(), &d.lhs_contract, &d.lhs_batch);
    let rfree = DotGeneral::free_axes(r.len(), &d.rhs_contract, &d.rhs_batch);
    let out: Vec<usize> = (d.lhs_batch.iter().map(|&a| l[a]))
        .chain(lfree.iter().map(|&a| l[a]))
        .chain(rfree.iter().map(|&a| r[a]))
        .collect();
    let small = b.dot_general(operands[0], operands[1], d.clone())?;
    Ok(Some(b.broadcast_to(small, &out.into())?))
}

/// The single operand of a unary-shaped node already in the builder.
fn b_operand(b: &FunctionBuilder, n: NodeId) -> Result<Option<NodeId>, IrError> {
    Ok(b.operands(n)?.first().copied())
}

/// Simplify `f`; returns the new function and the hits per rule.
pub fn simplify(f: &Function) -> Result<(Function, RuleHits), IrError> {
    let mut hits = RuleHits::new();
    let g = crate::rebuild(f, |b, v| rewrite(b, &v.node.op, v.args, &mut hits))?;
    Ok((g, hits))
}
