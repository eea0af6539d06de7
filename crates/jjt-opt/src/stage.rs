//! Staging: the part of a kernel that depends only on shared inputs (e.g. network parameters
//! θ) and constants moves into a `prepare` function, run once per value of θ; the per-call
//! function receives its results as extra inputs. Constant-only parts are left to constant
//! folding.
//!
//! Preserves: values bit for bit (the same nodes, evaluated in two functions).

use std::collections::HashSet;

use jjt_ir::{Function, FunctionBuilder, IrError, NodeId, Op, Replay};

use crate::cost::constant_nodes;

/// A kernel split in two.
#[derive(Clone, Debug)]
pub struct Staged {
    /// `(shared inputs...) -> (hoisted values...)`; `None` when nothing depends on the shared
    /// inputs alone.
    pub prepare: Option<Function>,
    /// `(inputs of the original that the per-call part still reads..., hoisted values...)`.
    pub call: Function,
    /// For each input of `call` before the hoisted ones: its position in the original's
    /// signature.
    pub call_inputs: Vec<usize>,
    /// For each input of `prepare`: its position in the original's signature.
    pub prepare_inputs: Vec<usize>,
}

/// Split `f`: `shared[i]` says whether input `i` is shared.
pub fn stage(f: &Function, shared: &[bool]) -> Result<Staged, IrError> {
    let consts = constant_nodes(f);
    let is_shared = |i: usize| shared.get(i).copied().unwrap_or(false);
    let inputs = |want: bool| {
        let ps = f.params().iter().enumerate();
        ps.filter(move |&(i, _)| is_shared(i) == want).map(|(_, p)| p.node)
    };
    // Nodes computable from shared inputs and constants alone (and not constant-only): those
    // that depend on a shared input and on no other input.
    let from_shared = f.forward_closure(inputs(true));
    let from_others = f.forward_closure(inputs(false));
    let s = |n: NodeId| from_shared.contains(n) && !from_others.contains(n);
    // Boundary: computed (non-input) shared nodes read by per-call nodes or returned.
    let outputs: HashSet<NodeId> = f.outputs().iter().copied().collect();
    let mut boundary: Vec<NodeId> = Vec::new();
    for n in from_shared.iter() {
        if !s(n) || matches!(f.node(n).map(|x| &x.op), Some(Op::Input(_))) {
            continue;
        }
        let read_outside = f.users(n).iter().any(|&u| !s(u));
        if read_outside || outputs.contains(&n) {
            boundary.push(n);
        }
    }
    // prepare: shared inputs → boundary values.
    let mut pb = FunctionBuilder::new(format!("{}_prepare", f.name));
    let mut pmap = Replay::new(f);
    let mut prepare_inputs = Vec::new();
    for (i, p) in f.params().iter().enumerate() {
        if is_shared(i) {
            pmap.bind(p.node, pb.input(&p.name, p.ty.clone())?);
            prepare_inputs.push(i);
        }
    }
    pmap.run(&mut pb, |n| s(n) || consts.contains(&n), |b, v| v.copy(b))?;
    let pouts = boundary.iter().map(|&n| pmap.get(n)).collect::<Result<Vec<_>, _>>()?;
    let prepare = if pouts.is_empty() { None } else { Some(pb.finish_many(pouts)?.pruned()) };
    // call: the remaining inputs it reads, then the boundary values as inputs.
    let mut cb = FunctionBuilder::new(f.name.clone());
    let mut cmap = Replay::new(f);
    let mut call_inputs = Vec::new();
    for (i, p) in f.params().iter().enumerate() {
        let shared_only_reads = f.users(p.node).iter().all(|&u| s(u)) && !outputs.contains(&p.node);
        if !is_shared(i) || !shared_only_reads {
            cmap.bind(p.node, cb.input(&p.name, p.ty.clone())?);
            call_inputs.push(i);
        }
    }
    let mut taken: Vec<String> = f.params().iter().map(|p| p.name.clone()).collect();
    for (k, &n) in boundary.iter().enumerate() {
        let ty = f.node(n).ok_or(IrError::UnknownNode(n))?.ty.clone();
        let mut name = format!("hoisted{k}");
        while taken.contains(&name) {
            name.push('_');
        }
        taken.push(name.clone());
        cmap.bind(n, cb.input(&name, ty)?);
    }
    cmap.run(&mut cb, |n| !s(n), |b, v| v.copy(b))?;
    let call = cb.finish_many(cmap.outputs()?)?.pruned();
    Ok(Staged { prepare, call, call_inputs, prepare_inputs })
}
