//! Forward mode: push tangents through the graph with each op's JVP rule.

use jjt_ir::types::is_float;
use jjt_ir::{Function, FunctionBuilder, NodeId};

use crate::{AdError, builder_like, fresh_name, input_mask, or_zeros, replay_bound};

/// Emit the JVP of `f` into `b`: `primals[i]` and `tangents[i]` stand for input `i` and its
/// tangent (`None`: zero). Returns the primal outputs and their tangents (`None`: zero, and
/// no node was emitted for it).
pub fn jvp_into(
    b: &mut FunctionBuilder,
    f: &Function,
    primals: &[NodeId],
    tangents: &[Option<NodeId>],
) -> Result<(Vec<NodeId>, Vec<Option<NodeId>>), AdError> {
    let args: Vec<(NodeId, Option<NodeId>)> =
        primals.iter().copied().zip(tangents.to_vec()).collect();
    let outs = replay_bound(b, f, &args, |b, v| {
        let xs = v.arg_nodes();
        let ts: Vec<Option<NodeId>> = v.args.iter().map(|&(_, t)| t).collect();
        let y = b.add(v.node.op.clone(), &xs)?;
        let t = if is_float(v.node.ty.dtype) && ts.iter().any(Option::is_some) {
            v.node.op.rule().jvp(b, jjt_ir::ops::JvpArgs { x: &xs, t: &ts, y })?
        } else {
            None
        };
        Ok((y, t))
    })?;
    Ok(outs.into_iter().unzip())
}

/// The JVP of `f` with respect to the inputs named in `wrt`, as a function of
/// `(inputs..., tangents of wrt...)` returning `(outputs..., output tangents...)`. Tangent
/// inputs are named `<input>_dot`; zero output tangents are materialised as zeros.
pub fn jvp(f: &Function, wrt: &[impl AsRef<str>]) -> Result<Function, AdError> {
    jvp_mask(f, &input_mask(f, wrt)?)
}

/// [`jvp`] with the differentiated inputs given as a mask.
pub(crate) fn jvp_mask(f: &Function, mask: &[bool]) -> Result<Function, AdError> {
    if !mask.contains(&true) {
        return Err(AdError::NoWrt);
    }
    let (mut b, args) = builder_like(&format!("{}_jvp", f.name), f)?;
    let mut taken: Vec<String> = f.params().iter().map(|p| p.name.clone()).collect();
    let mut tangents = vec![None; args.len()];
    for (i, p) in f.params().iter().enumerate() {
        if mask[i] {
            if !is_float(p.ty.dtype) {
                return Err(AdError::NotFloat { name: p.name.clone(), dtype: p.ty.dtype });
            }
            let name = fresh_name(&format!("{}_dot", p.name), &mut taken);
            tangents[i] = Some(b.input(&name, p.ty.clone())?);
        }
    }
    let (outs, touts) = jvp_into(&mut b, f, &args, &tangents)?;
    let mut all = outs.clone();
    for (o, t) in outs.iter().zip(touts) {
        let ty = b.ty(*o)?.clone();
        all.push(or_zeros(&mut b, t, &ty)?);
    }
    Ok(b.finish_many(all)?.pruned())
}
