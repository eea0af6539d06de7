//! Transposition: given a function linear in some of its inputs, emit the function mapping
//! output cotangents to cotangents of those inputs, with each op's transpose rule.
//!
//! Nodes that depend on a linear input are *linear*; the others are *known* (residuals): they
//! are replayed into the target builder, where hash-consing shares them with the primal
//! computation. Linear nodes are visited in reverse topological order; cotangents reaching a
//! node from several users are summed. A node that receives no cotangent is skipped (symbolic
//! zero), so zero cotangents in give exactly zero out.

use std::collections::HashMap;

use jjt_ir::ops::Lin;
use jjt_ir::{Binary, Function, FunctionBuilder, IrError, NodeId, Op, Replay};

use crate::{AdError, fresh_name, or_zeros, output_types};

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
    // Linear nodes: those that depend on a linear input.
    let lin_inputs = lf.params().iter().zip(linear).filter(|&(_, &l)| l).map(|(p, _)| p.node);
    let is_lin = lf.forward_closure(lin_inputs);
    // Known nodes that linear nodes read, and what they depend on, replayed in order.
    let read = is_lin.iter().flat_map(|n| lf.operands(n)).filter(|&o| !is_lin.contains(o));
    let needed = lf.backward_closure(read);
    let mut known_val = Replay::new(lf);
    known_val.run(
        b,
        |n| needed.contains(n),
        |b, v| match &v.node.op {
            Op::Input(i) => known
                .get(i.index)
                .copied()
                .flatten()
                .ok_or_else(|| AdError::UnboundInput { function: lf.name.clone(), index: i.index }),
            _ => Ok(v.copy(b)?),
        },
    )?;
    // Accumulate cotangents backwards.
    let mut ct: HashMap<NodeId, NodeId> = HashMap::new();
    for (&o, c) in lf.outputs().iter().zip(out_cts) {
        if let (Some(c), true) = (c, is_lin.contains(o)) {
            accumulate(b, &mut ct, o, *c)?;
        }
    }
    let mut result = vec![None; lf.params().len()];
    for n in is_lin.iter().rev() {
        let Some(c) = ct.remove(&n) else { continue };
        let node = lf.node(n).ok_or(IrError::UnknownNode(n))?;
        if let Op::Input(i) = &node.op {
            result[i.index] = Some(c);
            continue;
        }
        let operands = lf.operands(n);
        let lins: Vec<Lin> = operands
            .iter()
            .map(|&o| match lf.node(o) {
                Some(x) if is_lin.contains(o) => Ok(Lin::Linear(x.ty.clone())),
                _ => known_val.get(o).map(Lin::Known),
            })
            .collect::<Result<_, _>>()?;
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
        return Err(AdError::LinearityFlags {
            function: lf.name.clone(),
            flags: linear.len(),
            inputs: lf.params().len(),
        });
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
    for (j, ty) in output_types(lf)?.into_iter().enumerate() {
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
