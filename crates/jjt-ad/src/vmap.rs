//! Batching: apply each op's batching rule to map a function over a new axis.

use jjt_ir::{Function, FunctionBuilder, NodeId, Shape};

use crate::{AdError, replay_bound};

/// Emit `f` mapped over a batch axis into `b`: `args[i]` is batched along `dims[i]` (or not
/// batched), `size` is the batch size. Returns each output with its batch axis (`None`: the
/// output does not depend on a batched input).
pub fn vmap_into(
    b: &mut FunctionBuilder,
    f: &Function,
    args: &[NodeId],
    dims: &[Option<usize>],
    size: usize,
) -> Result<Vec<(NodeId, Option<usize>)>, AdError> {
    for (index, (&a, d)) in args.iter().zip(dims).enumerate() {
        if let Some(axis) = *d {
            let shape = b.ty(a)?.shape.clone();
            let actual = shape.dims().get(axis).copied();
            if actual != Some(size) {
                return Err(AdError::BatchSize {
                    index,
                    axis,
                    expected: size,
                    actual: actual.unwrap_or(0),
                });
            }
        }
    }
    let args: Vec<(NodeId, Option<usize>)> = args.iter().copied().zip(dims.to_vec()).collect();
    replay_bound(b, f, &args, |b, v| {
        let xs = v.arg_nodes();
        let ds: Vec<Option<usize>> = v.args.iter().map(|&(_, d)| d).collect();
        if ds.iter().all(Option::is_none) {
            Ok((b.add(v.node.op.clone(), &xs)?, None))
        } else {
            Ok(v.node.op.rule().batch(b, jjt_ir::ops::BatchArgs { x: &xs, dims: &ds, size })?)
        }
    })
}

/// Move an output's batch axis to the front, broadcasting an unbatched output.
pub fn to_front(
    b: &mut FunctionBuilder,
    (v, d): (NodeId, Option<usize>),
    size: usize,
) -> Result<NodeId, AdError> {
    match d {
        Some(0) => Ok(v),
        Some(d) => {
            let rank = b.ty(v)?.rank();
            let mut perm = vec![d];
            perm.extend((0..rank).filter(|&a| a != d));
            Ok(b.transpose(v, &perm)?)
        }
        None => {
            let mut shape = vec![size];
            shape.extend_from_slice(b.ty(v)?.shape.dims());
            Ok(b.broadcast_to(v, &Shape(shape))?)
        }
    }
}

/// `f` mapped over a new axis: input `i` gains a batch axis at `in_axes[i]` (or is shared when
/// `None`), of size `size`; every output gets the batch axis first.
pub fn vmap(f: &Function, in_axes: &[Option<usize>], size: usize) -> Result<Function, AdError> {
    if in_axes.len() != f.params().len() {
        return Err(AdError::InAxes(format!(
            "in_axes has {} entries for the {} inputs of `{}`",
            in_axes.len(),
            f.params().len(),
            f.name
        )));
    }
    let mut b = FunctionBuilder::new(format!("{}_vmap", f.name));
    let mut args = Vec::new();
    for (p, ax) in f.params().iter().zip(in_axes) {
        let ty = match ax {
            None => p.ty.clone(),
            Some(a) if *a <= p.ty.rank() => {
                let mut dims = p.ty.shape.0.clone();
                dims.insert(*a, size);
                p.ty.with_shape(dims)
            }
            Some(a) => {
                return Err(AdError::InAxes(format!(
                    "in_axes {a} is out of range for input `{}` of rank {}",
                    p.name,
                    p.ty.rank()
                )));
            }
        };
        args.push(b.input(&p.name, ty)?);
    }
    let outs = vmap_into(&mut b, f, &args, in_axes, size)?;
    let outs =
        outs.into_iter().map(|o| to_front(&mut b, o, size)).collect::<Result<Vec<_>, _>>()?;
    Ok(b.finish_many(outs)?.pruned())
}
