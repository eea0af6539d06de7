//! Linearization: split the JVP into the primal computation (which also returns the residuals
//! the tangent computation needs) and a function linear in the tangents.

use std::collections::{HashMap, HashSet};

use jjt_ir::{Function, FunctionBuilder, NodeId, Op};

use crate::{AdError, fresh_name, jvp::jvp_mask};

/// The two halves of a linearized function.
#[derive(Debug, Clone)]
pub struct Linearized {
    /// `(inputs...) -> (outputs..., residuals...)`.
    pub primal: Function,
    /// `(residuals..., tangents of wrt...) -> (output tangents...)`, linear in the tangents.
    pub linear: Function,
    /// Number of residuals.
    pub residuals: usize,
}

/// Linearize `f` with respect to the inputs named in `wrt`.
pub fn linearize(f: &Function, wrt: &[impl AsRef<str>]) -> Result<Linearized, AdError> {
    let mask = crate::input_mask(f, wrt)?;
    let s = jvp_mask(f, &mask)?;
    let n_in = f.params().len();
    let n_out = f.outputs().len();
    let order = s.topo_order().ok_or(AdError::Cycle)?;
    // Classify: linear (depends on a tangent input), input-dependent known, constant-only.
    let mut lin: HashSet<NodeId> = HashSet::new();
    let mut dep: HashSet<NodeId> = HashSet::new();
    for &n in &order {
        let Some(node) = s.node(n) else { continue };
        match &node.op {
            Op::Input(i) if i.index >= n_in => {
                lin.insert(n);
            }
            Op::Input(_) => {
                dep.insert(n);
            }
            _ => {
                let ops = s.operands(n);
                if ops.iter().any(|o| lin.contains(o)) {
                    lin.insert(n);
                } else if ops.iter().any(|o| dep.contains(o)) {
                    dep.insert(n);
                }
            }
        }
    }
    // Residuals: input-dependent known operands of linear nodes, in topological order.
    let read: HashSet<NodeId> =
        lin.iter().flat_map(|&n| s.operands(n)).filter(|o| dep.contains(o)).collect();
    let residuals: Vec<NodeId> = order.iter().copied().filter(|n| read.contains(n)).collect();

    // The primal half: f's outputs, then the residuals.
    let mut pb = FunctionBuilder::new(format!("{}_primal", f.name));
    let mut pval: HashMap<NodeId, NodeId> = HashMap::new();
    for p in f.params() {
        pb.input(&p.name, p.ty.clone())?;
    }
    for &n in &order {
        let Some(node) = s.node(n) else { continue };
        if lin.contains(&n) {
            continue;
        }
        let v = match &node.op {
            Op::Input(i) => pb.params()[i.index].node,
            op => {
                let xs: Vec<NodeId> = s.operands(n).iter().map(|o| pval[o]).collect();
                pb.add(op.clone(), &xs)?
            }
        };
        if let Some(name) = &node.name {
            pb.name_node(v, name);
        }
        pval.insert(n, v);
    }
    let mut pouts: Vec<NodeId> = s.outputs()[..n_out].iter().map(|o| pval[o]).collect();
    pouts.extend(residuals.iter().map(|r| pval[r]));
    let primal = pb.finish_many(pouts)?.pruned();

    // The linear half: residuals become inputs, constants are rebuilt, linear nodes replayed.
    let mut lb = FunctionBuilder::new(format!("{}_linear", f.name));
    let mut taken: Vec<String> = s.params().iter().map(|p| p.name.clone()).collect();
    let mut lval: HashMap<NodeId, NodeId> = HashMap::new();
    for (k, &r) in residuals.iter().enumerate() {
        let ty = s.node(r).map(|n| n.ty.clone()).ok_or(AdError::Cycle)?;
        let hint = s.node(r).and_then(|n| n.name.clone()).unwrap_or_else(|| format!("r{k}"));
        let name = fresh_name(&hint, &mut taken);
        lval.insert(r, lb.input(&name, ty)?);
    }
    for p in &s.params()[n_in..] {
        lval.insert(p.node, lb.input(&p.name, p.ty.clone())?);
    }
    for &n in &order {
        if lval.contains_key(&n) || dep.contains(&n) {
            continue;
        }
        let Some(node) = s.node(n) else { continue };
        let xs: Vec<NodeId> = s.operands(n).iter().map(|o| lval[o]).collect();
        let v = lb.add(node.op.clone(), &xs)?;
        if let Some(name) = &node.name {
            lb.name_node(v, name);
        }
        lval.insert(n, v);
    }
    let louts = s.outputs()[n_out..]
        .iter()
        .map(|o| lval.get(o).copied().ok_or(AdError::Cycle))
        .collect::<Result<Vec<_>, _>>()?;
    let linear = lb.finish_many(louts)?.pruned();
    Ok(Linearized { primal, linear, residuals: residuals.len() })
}
