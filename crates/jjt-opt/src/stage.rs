//! Staging: the part of a kernel that depends only on shared inputs (e.g. network parameters
//! θ) and constants moves into a `prepare` function, run once per value of θ; the per-call
//! function receives its results as extra inputs. Constant-only parts are left to constant
//! folding.
//!
//! Preserves: values bit for bit (the same nodes, evaluated in two functions).

use std::collections::{HashMap, HashSet};

use jjt_ir::{Function, FunctionBuilder, IrError, NodeId, Op};

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
    let order = f.topo_order().unwrap_or_default();
    // Nodes computable from shared inputs and constants alone (and not constant-only).
    let mut s: HashSet<NodeId> = HashSet::new();
    for &n in &order {
        let Some(node) = f.node(n) else { continue };
        let ok = match &node.op {
            Op::Input(i) => shared.get(i.index).copied().unwrap_or(false),
            Op::Const(_) => false,
            _ => {
                let ops = f.operands(n);
                !ops.is_empty()
                    && ops.iter().all(|o| s.contains(o) || consts.contains(o))
                    && ops.iter().any(|o| s.contains(o))
            }
        };
        if ok {
            s.insert(n);
        }
    }
    // Boundary: computed (non-input) shared nodes read by per-call nodes or returned.
    let outputs: HashSet<NodeId> = f.outputs().iter().copied().collect();
    let mut boundary: Vec<NodeId> = Vec::new();
    for &n in &order {
        if !s.contains(&n) || matches!(f.node(n).map(|x| &x.op), Some(Op::Input(_))) {
            continue;
        }
        let read_outside = f.users(n).iter().any(|u| !s.contains(u));
        if read_outside || outputs.contains(&n) {
            boundary.push(n);
        }
    }
    let replay = |b: &mut FunctionBuilder,
                  map: &mut HashMap<NodeId, NodeId>,
                  keep: &dyn Fn(NodeId) -> bool|
     -> Result<(), IrError> {
        for &n in &order {
            if map.contains_key(&n) || !keep(n) {
                continue;
            }
            let Some(node) = f.node(n) else { continue };
            if matches!(node.op, Op::Input(_)) {
                continue;
            }
            crate::copy_node(b, f, n, map)?;
        }
        Ok(())
    };
    // prepare: shared inputs → boundary values.
    let mut pb = FunctionBuilder::new(format!("{}_prepare", f.name));
    let mut pmap: HashMap<NodeId, NodeId> = HashMap::new();
    let mut prepare_inputs = Vec::new();
    for (i, p) in f.params().iter().enumerate() {
        if shared.get(i).copied().unwrap_or(false) {
            pmap.insert(p.node, pb.input(&p.name, p.ty.clone())?);
            prepare_inputs.push(i);
        }
    }
    replay(&mut pb, &mut pmap, &|n| s.contains(&n) || consts.contains(&n))?;
    let pouts: Vec<NodeId> = boundary.iter().map(|n| pmap[n]).collect();
    let prepare = if pouts.is_empty() { None } else { Some(pb.finish_many(pouts)?.pruned()) };
    // call: the remaining inputs it reads, then the boundary values as inputs.
    let mut cb = FunctionBuilder::new(f.name.clone());
    let mut cmap: HashMap<NodeId, NodeId> = HashMap::new();
    let mut call_inputs = Vec::new();
    for (i, p) in f.params().iter().enumerate() {
        let shared_only_reads =
            f.users(p.node).iter().all(|u| s.contains(u)) && !outputs.contains(&p.node);
        let is_shared = shared.get(i).copied().unwrap_or(false);
        if !is_shared || !shared_only_reads {
            cmap.insert(p.node, cb.input(&p.name, p.ty.clone())?);
            call_inputs.push(i);
        }
    }
    let mut taken: Vec<String> = f.params().iter().map(|p| p.name.clone()).collect();
    for (k, &n) in boundary.iter().enumerate() {
        let ty = f
            .node(n)
            .map(|x| x.ty.clone())
            .unwrap_or_else(|| jjt_ir::TensorType::scalar(jjt_ir::DType::F64));
        let mut name = format!("hoisted{k}");
        while taken.contains(&name) {
            name.push('_');
        }
        taken.push(name.clone());
        cmap.insert(n, cb.input(&name, ty)?);
    }
    replay(&mut cb, &mut cmap, &|n| !s.contains(&n))?;
    let couts: Vec<NodeId> = f.outputs().iter().map(|o| cmap[o]).collect();
    let call = cb.finish_many(couts)?.pruned();
    Ok(Staged { prepare, call, call_inputs, prepare_inputs })
}
