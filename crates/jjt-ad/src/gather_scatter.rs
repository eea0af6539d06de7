//! `gather(scatter_add(i2, u), i1)` without the table between them.
//!
//! The NTK-vector product of a model that looks rows up in a table (an embedding) pulls the
//! cotangent back into a table-shaped gradient, `scatter_add(i2, u, size = V)`, and pushes it
//! forward by reading the rows the other example uses, `gather(·, i1)`. Row `v` of the scatter
//! is the sum of the updates whose index is `v`, so
//! `gather(scatter_add(i2, u), i1)[p, q1, r] = Σ_q2 [clamp(i1[q1]) = clamp(i2[q2])] · u[p, q2, r]`:
//! a comparison of the two index sets contracted with the updates, with nothing of the table's
//! size `V` (the dense `[V × width]` gradient per example and output is never built). Both ops
//! clamp indices to `[0, V − 1]` the same way, so the identity is exact; the sum is taken in
//! `dot_general`'s order instead of the scatter's (values agree up to reassociation).

use jjt_ir::ops::{Compare, DotGeneral, Gather, ScatterAdd};
use jjt_ir::walk::Replay;
use jjt_ir::{Binary, Function, FunctionBuilder, IrError, NodeId, Op, Shape};

/// `f` with every `gather(scatter_add(i2, u, size, axis), i1, axis)` (the same axis, the
/// scatter used only there) replaced by the comparison form.
pub fn fuse(f: &Function) -> Result<Function, IrError> {
    let mut uses = std::collections::HashMap::<NodeId, usize>::new();
    for n in f.node_ids() {
        for o in f.operands(n) {
            *uses.entry(o).or_insert(0) += 1;
        }
    }
    let outputs: Vec<NodeId> = f.outputs().to_vec();
    let mut b = FunctionBuilder::new(f.name.clone());
    let mut r = Replay::new(f);
    for p in f.params() {
        r.bind(p.node, b.input(&p.name, p.ty.clone())?);
    }
    r.run(
        &mut b,
        |_| true,
        |b, v| {
            if let Op::Gather(Gather { axis }) = &v.node.op {
                let ops = f.operands(v.id);
                let table = ops[0];
                if let Some(tn) = f.node(table)
                    && let Op::ScatterAdd(ScatterAdd { size, axis: sa }) = tn.op
                    && sa == *axis
                    && uses.get(&table) == Some(&1)
                    && !outputs.contains(&table)
                {
                    let s_ops = f.operands(table);
                    let (i2, u) = (v.get(s_ops[0])?, v.get(s_ops[1])?);
                    return comparison(b, v.args[1], i2, u, size, *axis);
                }
            }
            v.copy(b)
        },
    )?;
    b.finish_many(r.outputs()?).map(|g| g.pruned())
}

/// `Σ_q2 [clamp(i1[q1]) = clamp(i2[q2])] · u[p, q2, r]`, laid out `[p, q1, r]`.
fn comparison(
    b: &mut FunctionBuilder,
    i1: NodeId,
    i2: NodeId,
    u: NodeId,
    size: usize,
    axis: usize,
) -> Result<NodeId, IrError> {
    let (t1, t2, tu) = (b.ty(i1)?.clone(), b.ty(i2)?.clone(), b.ty(u)?.clone());
    let (k1, k2) = (t1.rank(), t2.rank());
    let clamp = |b: &mut FunctionBuilder, i: NodeId| -> Result<NodeId, IrError> {
        let ty = b.ty(i)?.clone();
        let lo = b.full(ty.clone(), 0.0)?;
        let hi = b.full(ty, size.saturating_sub(1) as f64)?;
        let c = b.binary(Binary::Maximum, i, lo)?;
        b.binary(Binary::Minimum, c, hi)
    };
    let (c1, c2) = (clamp(b, i1)?, clamp(b, i2)?);
    // [Q1…, Q2…]: i1 along the first axes, i2 along the last.
    let both = Shape([t1.shape.dims(), t2.shape.dims()].concat());
    let c1 = b.reshape(c1, [t1.shape.dims(), &vec![1; k2][..]].concat())?;
    let c1 = b.broadcast_to(c1, &both)?;
    let c2 = b.broadcast_to(c2, &both)?;
    let eq = b.compare(Compare::Eq, c1, c2)?;
    let m = b.convert(eq, tu.dtype)?;
    // Contract Q2 of the mask with u's index axes: [Q1…, P…, R…], then [P…, Q1…, R…].
    let dims = DotGeneral {
        lhs_contract: (k1..k1 + k2).collect(),
        rhs_contract: (axis..axis + k2).collect(),
        lhs_batch: vec![],
        rhs_batch: vec![],
    };
    let g = b.dot_general(m, u, dims)?;
    let rank = k1 + tu.rank() - k2;
    let mut perm: Vec<usize> = (k1..k1 + axis).collect();
    perm.extend(0..k1);
    perm.extend(k1 + axis..rank);
    b.transpose(g, &perm)
}
