//! Layout canonicalisation: transposes sink toward the values they permute, until they meet a
//! graph input, a value with other users, or a contraction that can produce the permuted
//! layout itself.
//!
//! Rules (counted by name, as in [`crate::simplify`]):
//! - `transpose_of_transpose`: `transpose(transpose(x, p), q)` → `transpose(x, p∘q)`;
//! - `transpose_through_elementwise`: `transpose(f(a, b, …))` → `f(transpose(a), transpose(b), …)`
//!   for an elementwise `f` (unary, binary, compare, select, convert) whose result has no other
//!   user, so nothing is computed twice;
//! - `transpose_of_full`: a transposed splat is the splat of the permuted shape;
//! - `transpose_through_broadcast`: `transpose(broadcast_to(x))` → `broadcast_to(transpose(x))`
//!   when the permutation keeps the broadcast's new leading axes in place (broadcasting is
//!   axis-wise on the others), so the transpose keeps sinking toward `x`;
//! - `transpose_into_dot_general`: a `dot_general` (with no other user) whose permuted output
//!   order is still batch axes, then one operand's free axes, then the other's, is rebuilt with
//!   its operands transposed (free in the code generator: a transpose is a strided view) and,
//!   if the permutation puts the right operand's axes first, the operands swapped;
//! - `reshape_out_of_elementwise`: `f(…, reshape(broadcast_to(x, S), T), …)` → `reshape(f(…,
//!   broadcast_to(x, S), …), T)` for an elementwise `f`, the other operands reshaped to S, when
//!   the reshape only merges axes and one merged axis joins broadcast axes with stored ones (a
//!   pool's upsampled cotangent, `[…, 16, 2, 16, 2, C]` → `[…, 32, 32, C]`): no strided view
//!   reads such a reshape, so the planner would store the broadcast in full (four times its
//!   operand) before `f` reads it; in S, `f` reads the broadcast in place.
//!
//! Why: a transpose of a computed value makes every reader of it walk memory with a large
//! stride, which defeats vector loads; the kernel graphs end in sums of terms in different
//! layouts (`[i,a,j,b]` Gram blocks, `[a,b,i,j]` outer products with an identity), and sinking
//! the transposes lets a contraction write its result in the layout its readers want.
//!
//! Preserves: values bit for bit (a swapped contraction multiplies `y·x` instead of `x·y`,
//! which IEEE multiplication makes identical, and sums over the contracted axes in the same
//! order).

use std::collections::HashMap;

use jjt_ir::ops::{Const, DotGeneral, Transpose};
use jjt_ir::{Function, FunctionBuilder, IrError, NodeId, Op};

use crate::simplify::RuleHits;

/// Canonicalise the layout ops of `f`; returns the new function and the hits per rule.
pub fn layout(f: &Function) -> Result<(Function, RuleHits), IrError> {
    let mut users: HashMap<NodeId, usize> = HashMap::new();
    for n in f.node_ids() {
        for o in f.operands(n) {
            *users.entry(o).or_default() += 1;
        }
    }
    for &o in f.outputs() {
        *users.entry(o).or_default() += 1;
    }
    let mut origin = HashMap::new();
    let mut hits = RuleHits::new();
    let mut b = FunctionBuilder::new(f.name.clone());
    let mut r = crate::replay_inputs(f, &mut b)?;
    r.run(
        &mut b,
        |_| true,
        |b, v| {
            let mut s = Sinker { b, origin: &mut origin, hits: &mut hits };
            let x = match &v.node.op {
                Op::Transpose(Transpose { perm }) => s.sink(v.args[0], perm)?,
                Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select(_) | Op::Convert(_) => {
                    match s.unmerged(&v.node.op, v.args)? {
                        Some(y) => y,
                        None => v.copy(s.b)?,
                    }
                }
                _ => v.copy(s.b)?,
            };
            let single = users.get(&v.id).copied().unwrap_or(0) == 1;
            s.origin.entry(x).and_modify(|e| *e = false).or_insert(single);
            Ok::<_, IrError>(x)
        },
    )?;
    Ok((b.finish_many(r.outputs()?)?.pruned(), hits))
}

struct Sinker<'a> {
    b: &'a mut FunctionBuilder,
    /// For nodes copied from the input graph: whether it has exactly one user there (and no
    /// other input node was merged into it). Nodes the rules create are absent: not sunk into.
    origin: &'a mut HashMap<NodeId, bool>,
    hits: &'a mut RuleHits,
}

impl Sinker<'_> {
    fn hit(&mut self, name: &'static str) {
        *self.hits.entry(name).or_insert(0) += 1;
    }

    fn single_use(&self, x: NodeId) -> bool {
        self.origin.get(&x).copied().unwrap_or(false)
    }

    /// `transpose(x, perm)`, sunk as far as the rules allow.
    fn sink(&mut self, x: NodeId, perm: &[usize]) -> Result<NodeId, IrError> {
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(x);
        }
        let op = self.b.op(x)?.clone();
        let xs = self.b.operands(x)?;
        match op {
            Op::Transpose(Transpose { perm: inner }) => {
                self.hit("transpose_of_transpose");
                let composed: Vec<usize> = perm.iter().map(|&p| inner[p]).collect();
                self.sink(xs[0], &composed)
            }
            Op::BroadcastTo(bc) => {
                // Broadcasting is axis-wise once the new leading axes are set aside: a
                // permutation that keeps them in place moves to the operand.
                let rank = self.b.ty(xs[0])?.rank();
                let lead = perm.len() - rank;
                if perm[..lead].iter().enumerate().any(|(i, &p)| i != p) {
                    return self.b.transpose(x, perm);
                }
                self.hit("transpose_through_broadcast");
                let inner: Vec<usize> = perm[lead..].iter().map(|&p| p - lead).collect();
                let y = self.sink(xs[0], &inner)?;
                let dims: Vec<usize> = perm.iter().map(|&p| bc.shape.dims()[p]).collect();
                self.b.broadcast_to(y, &jjt_ir::Shape(dims))
            }
            Op::Const(Const::Full { ty, bits }) => {
                self.hit("transpose_of_full");
                let dims = perm.iter().map(|&p| ty.shape.dims()[p]).collect::<Vec<_>>();
                self.b.constant(Const::Full { ty: ty.with_shape(dims), bits })
            }
            Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select(_) | Op::Convert(_)
                if self.single_use(x) =>
            {
                self.hit("transpose_through_elementwise");
                let ys = xs.iter().map(|&o| self.sink(o, perm)).collect::<Result<Vec<_>, _>>()?;
                self.b.add(op, &ys)
            }
            Op::DotGeneral(d) if self.single_use(x) => {
                match self.absorb_into_dot(xs[0], xs[1], &d, perm)? {
                    Some(v) => {
                        self.hit("transpose_into_dot_general");
                        Ok(v)
                    }
                    None => self.b.transpose(x, perm),
                }
            }
            _ => self.b.transpose(x, perm),
        }
    }

    /// `transpose(dot_general(x, y, d), perm)` as one `dot_general` of transposed operands, if
    /// the permuted output is batch axes, then one operand's free axes, then the other's.
    fn absorb_into_dot(
        &mut self,
        x: NodeId,
        y: NodeId,
        d: &DotGeneral,
        perm: &[usize],
    ) -> Result<Option<NodeId>, IrError> {
        let (rx, ry) = (self.b.ty(x)?.rank(), self.b.ty(y)?.rank());
        let nb = d.lhs_batch.len();
        let lfree = DotGeneral::free_axes(rx, &d.lhs_contract, &d.lhs_batch);
        let rfree = DotGeneral::free_axes(ry, &d.rhs_contract, &d.rhs_batch);
        let nl = lfree.len();
        let is_lhs = |p: usize| (nb..nb + nl).contains(&p);
        if perm[..nb].iter().any(|&p| p >= nb) {
            return Ok(None);
        }
        let rest = &perm[nb..];
        let swapped = rest.first().is_some_and(|&p| !is_lhs(p));
        let head = if swapped { rfree.len() } else { nl };
        if rest[..head].iter().any(|&p| is_lhs(p) == swapped)
            || rest[head..].iter().any(|&p| is_lhs(p) != swapped)
        {
            return Ok(None);
        }
        // Each operand, transposed to (batch in the new order, free in the new order, contract).
        let lb: Vec<usize> = perm[..nb].iter().map(|&p| d.lhs_batch[p]).collect();
        let rb: Vec<usize> = perm[..nb].iter().map(|&p| d.rhs_batch[p]).collect();
        let lf: Vec<usize> = rest.iter().filter(|&&p| is_lhs(p)).map(|&p| lfree[p - nb]).collect();
        let rf: Vec<usize> =
            rest.iter().filter(|&&p| !is_lhs(p)).map(|&p| rfree[p - nb - nl]).collect();
        let px: Vec<usize> = lb.iter().chain(&lf).chain(&d.lhs_contract).copied().collect();
        let py: Vec<usize> = rb.iter().chain(&rf).chain(&d.rhs_contract).copied().collect();
        let xt = self.plain_transpose(x, &px)?;
        let yt = self.plain_transpose(y, &py)?;
        let nc = d.lhs_contract.len();
        let batch: Vec<usize> = (0..nb).collect();
        let lc: Vec<usize> = (nb + lf.len()..nb + lf.len() + nc).collect();
        let rc: Vec<usize> = (nb + rf.len()..nb + rf.len() + nc).collect();
        let (lhs, rhs, lhs_contract, rhs_contract) =
            if swapped { (yt, xt, rc, lc) } else { (xt, yt, lc, rc) };
        let dims =
            DotGeneral { lhs_contract, rhs_contract, lhs_batch: batch.clone(), rhs_batch: batch };
        Ok(Some(self.b.dot_general(lhs, rhs, dims)?))
    }

    /// `f(…, reshape(broadcast_to(x, S), T), …)` for an elementwise `f`, when the reshape only
    /// merges axes of S and some merged axis joins broadcast axes with others (so that no
    /// strided view reads it and it would be copied out in full): `f` computed in S, on the
    /// broadcast itself and the other operands' reshapes to S (splits, read in place), and its
    /// result reshaped to T. `None` when no operand is such a reshape.
    fn unmerged(&mut self, op: &Op, args: &[NodeId]) -> Result<Option<NodeId>, IrError> {
        let mut fine = None;
        for &a in args {
            if !matches!(self.b.op(a)?, Op::Reshape(_)) {
                continue;
            }
            let q = self.b.operands(a)?[0];
            if !matches!(self.b.op(q)?, Op::BroadcastTo(_)) {
                continue;
            }
            let x = self.b.operands(q)?[0];
            let (xd, sd) = (self.b.ty(x)?.shape.0.clone(), self.b.ty(q)?.shape.0.clone());
            let td = self.b.ty(a)?.shape.0.clone();
            let lead = sd.len() - xd.len();
            let broadcast: Vec<bool> =
                (0..sd.len()).map(|i| i < lead || (xd[i - lead] == 1 && sd[i] != 1)).collect();
            if mixes_broadcast(&sd, &broadcast, &td) {
                fine = Some(sd);
                break;
            }
        }
        let Some(sd) = fine else { return Ok(None) };
        self.hit("reshape_out_of_elementwise");
        let to = self.b.ty(args[0])?.shape.0.clone();
        let mut ys = Vec::with_capacity(args.len());
        for &a in args {
            let direct = match self.b.op(a)? {
                Op::Reshape(_) => {
                    let q = self.b.operands(a)?[0];
                    (self.b.ty(q)?.shape.0 == sd).then_some(q)
                }
                _ => None,
            };
            ys.push(match direct {
                Some(q) => q,
                None => self.b.reshape(a, sd.clone())?,
            });
        }
        let y = self.b.add(op.clone(), &ys)?;
        Ok(Some(self.b.reshape(y, to)?))
    }

    /// A transpose (none for the identity) that is not sunk: the operands of a contraction stay
    /// where they are, read through strided views.
    fn plain_transpose(&mut self, x: NodeId, perm: &[usize]) -> Result<NodeId, IrError> {
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            Ok(x)
        } else {
            self.b.transpose(x, perm)
        }
    }
}

/// Whether reshaping `from` (whose axes marked in `broadcast` have stride 0) to `to` only merges
/// runs of consecutive axes, one of them joining a broadcast axis and a stored one (both of
/// extent above 1): such a merge has no strided view, so the reshape would copy.
fn mixes_broadcast(from: &[usize], broadcast: &[bool], to: &[usize]) -> bool {
    let axes: Vec<usize> = (0..from.len()).filter(|&i| from[i] != 1).collect();
    let mut mixed = false;
    let mut k = 0;
    for &t in to.iter().filter(|&&t| t != 1) {
        let (mut size, mut any_b, mut any_s) = (1usize, false, false);
        while size < t {
            let Some(&i) = axes.get(k) else { return false };
            size *= from[i];
            any_b |= broadcast[i];
            any_s |= !broadcast[i];
            k += 1;
        }
        if size != t {
            return false;
        }
        mixed |= any_b && any_s;
    }
    k == axes.len() && mixed
}
