//! Transposition: given a function linear in some of its inputs, emit the function mapping
//! output cotangents to cotangents of those inputs, with each op's transpose rule.
//!
//! Nodes that depend on a linear input are *linear*; the others are *known* (residuals): they
//! are replayed into the target builder, where hash-consing shares them with the primal
//! computation. Linear nodes are visited in reverse topological order; cotangents reaching a
//! node from several users are summed. A node that receives no cotangent is skipped (symbolic
//! zero), so zero cotangents in give exactly zero out.

use std::collections::{HashMap, HashSet};

use jjt_ir::ops::Lin;
use jjt_ir::{Binary, Function, FunctionBuilder, NodeId, Op};

use crate::{AdError, fresh_name, or_zeros};

/// Emit the transpose of `lf` into `b`. `linear[i]` marks the inputs `lf` is linear in;
/// `known[i]` binds each other input to a node of `b`; `out_cts[j]` is the cotangent of output
/// `j` (`None`: zero). Returns one cotangent per input (`None` for known inputs and for zero
/// cotangents).
pub fn transpose_into(
    b: &mut FunctionBuilder,
    lf: &Function,
    linear: &[bool],
    known: &[Option<NodeId>],
    out_cts: &[Option<NodeId>],
) -> Result<Vec<Option<NodeId>>, AdError> {
    let order = lf.topo_order().ok_or(AdError::Cycle)?;
    // Which nodes are linear.
    let mut is_lin: HashSet<NodeId> = HashSet::new();
    for &n in &order {
        let Some(node) = lf.node(n) else { continue };
        let lin = match &node.op {
            Op::Input(i) => linear[i.index],
            _ => lf.operands(n).iter().any(|o| is_lin.contains(o)),
        };
        if lin {
            is_lin.insert(n);
        }
    }
    // Known nodes that linear nodes read, and what they depend on, replayed in order.
    let mut needed: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<NodeId> =
        is_lin.iter().flat_map(|&n| lf.operands(n)).filter(|o| !is_lin.contains(o)).collect();
    while let Some(n) = stack.pop() {
        if needed.insert(n) {
            stack.extend(lf.operands(n));
        }
    }
    let mut val: HashMap<NodeId, NodeId> = HashMap::new();
    for &n in &order {
        if !needed.contains(&n) {
            continue;
        }
        let Some(node) = lf.node(n) else { continue };
        let v = match &node.op {
            Op::Input(i) => known[i.index].ok_or_else(|| {
                AdError::InAxes(format!("known input #{} of `{}` is not bound", i.index, lf.name))
            })?,
            op => {
                let xs: Vec<NodeId> = lf.operands(n).iter().map(|o| val[o]).collect();
                b.add(op.clone(), &xs)?
            }
        };
        val.insert(n, v);
    }
    // Accumulate cotangents backwards.
    let mut ct: HashMap<NodeId, NodeId> = HashMap::new();
    for (&o, c) in lf.outputs().iter().zip(out_cts) {
        if let (Some(c), true) = (c, is_lin.contains(&o)) {
            accumulate(b, &mut ct, o, *c)?;
        }
    }
    let mut result = vec![None; lf.params().len()];
    for &n in order.iter().rev() {
        if !is_lin.contains(&n) {
            continue;
        }
        let Some(c) = ct.remove(&n) else { continue };
        let Some(node) = lf.node(n) else { continue };
        if let Op::Input(i) = &node.op {
            result[i.index] = Some(c);
            continue;
        }
        let operands = lf.operands(n);
        let lins: Vec<Lin> = operands
            .iter()
            .map(|o| {
                if is_lin.contains(o) {
                    Lin::Linear(
                        lf.node(*o).map(|x| x.ty.clone()).unwrap_or_else(|| node.ty.clone()),
                    )
                } else {
                    Lin::Known(val[o])
                }
            })
            .collect();
        let cts = node.op.rule().transpose(b, c, &lins)?;
        for (o, c) in operands.iter().zip(cts) {
            if let Some(c) = c {
                accumulate(b, &mut ct, *o, c)?;
            }
        }
    }
    Ok(result)
}

fn accumulate(
    b: &mut FunctionBuilder,
    ct: &mut HashMap<NodeId, NodeId>,
    n: NodeId,
    c: NodeId,
) -> Result<(), AdError> {
    let v = match ct.get(&n) {
        Some(&prev) => b.binary(Binary::Add, prev, c)?,
        None => c,
    };
    ct.insert(n, v);
    Ok(())
}

/// The transpose of `lf`, linear in the inputs marked in `linear`, as a function of
/// `(known inputs..., output cotangents...)` returning the cotangents of the linear inputs
/// (zeros where nothing flows). Cotangent inputs are named `<output>_ct` (`ct0`, `ct1`, ...).
pub fn transpose(lf: &Function, linear: &[bool]) -> Result<Function, AdError> {
    if linear.len() != lf.params().len() {
        return Err(AdError::InAxes(format!(
            "{} linearity flags for {} inputs",
            linear.len(),
            lf.params().len()
        )));
    }
    let mut b = FunctionBuilder::new(format!("{}_transpose", lf.name));
    let mut taken: Vec<String> = lf.params().iter().map(|p| p.name.clone()).collect();
    let mut known = vec![None; linear.len()];
    for (i, p) in lf.params().iter().enumerate() {
        if !linear[i] {
            known[i] = Some(b.input(&p.name, p.ty.clone())?);
        }
    }
    let mut cts = Vec::new();
    for (j, ty) in lf.output_types().into_iter().enumerate() {
        let ty = ty.cloned().ok_or(AdError::Cycle)?;
        let name = fresh_name(&format!("ct{j}"), &mut taken);
        cts.push(Some(b.input(&name, ty)?));
    }
    let res = transpose_into(&mut b, lf, linear, &known, &cts)?;
    let mut outs = Vec::new();
    for (i, p) in lf.params().iter().enumerate() {
        if linear[i] {
            outs.push(or_zeros(&mut b, res[i], &p.ty)?);
        }
    }
    Ok(b.finish_many(outs)?.pruned())
}
