//! Linearization: split the JVP into the primal computation (which also returns the residuals
//! the tangent computation needs) and a function linear in the tangents.

use std::collections::HashSet;

use jjt_ir::{Function, FunctionBuilder, IrError, NodeId, Replay};

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
    // Classify: linear (depends on a tangent input), input-dependent known, constant-only.
    let params = s.params();
    let lin = s.forward_closure(params[n_in..].iter().map(|p| p.node));
    let inputs = s.forward_closure(params[..n_in].iter().map(|p| p.node));
    let dep = |n: NodeId| inputs.contains(n) && !lin.contains(n);
    // Residuals: input-dependent known operands of linear nodes, in topological order.
    let read: HashSet<NodeId> =
        lin.iter().flat_map(|n| s.operands(n)).filter(|&o| dep(o)).collect();
    let residuals: Vec<NodeId> = inputs.iter().filter(|n| read.contains(n)).collect();

    // The primal half: f's outputs, then the residuals.
    let mut pb = FunctionBuilder::new(format!("{}_primal", f.name));
    let mut pval = Replay::new(&s);
    for p in &params[..n_in] {
        pval.bind(p.node, pb.input(&p.name, p.ty.clone())?);
    }
    pval.run(&mut pb, |n| !lin.contains(n), |b, v| v.copy(b))?;
    let (outs, tangents) = s.outputs().split_at(n_out);
    let pouts = outs.iter().chain(&residuals).map(|&n| pval.get(n)).collect::<Result<_, _>>()?;
    let primal = pb.finish_many(pouts)?.pruned();

    // The linear half: residuals become inputs, constants are rebuilt, linear nodes replayed.
    let mut lb = FunctionBuilder::new(format!("{}_linear", f.name));
    let mut taken: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
    let mut lval = Replay::new(&s);
    for (k, &r) in residuals.iter().enumerate() {
        let node = s.node(r).ok_or(IrError::UnknownNode(r))?;
        let hint = node.name.clone().unwrap_or_else(|| format!("r{k}"));
        let name = fresh_name(&hint, &mut taken);
        lval.bind(r, lb.input(&name, node.ty.clone())?);
    }
    for p in &params[n_in..] {
        lval.bind(p.node, lb.input(&p.name, p.ty.clone())?);
    }
    lval.run(&mut lb, |n| !dep(n), |b, v| v.copy(b))?;
    let louts = tangents.iter().map(|&n| lval.get(n)).collect::<Result<_, _>>()?;
    let linear = lb.finish_many(louts)?.pruned();
    Ok(Linearized { primal, linear, residuals: residuals.len() })
}
