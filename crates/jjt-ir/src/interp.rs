//! The reference interpreter: evaluates any verified [`Function`] on concrete tensors.
//! Written for obviousness, not speed; it is the oracle every later stage is tested against.

use std::collections::HashMap;

use crate::error::EvalError;
use crate::graph::{Function, NodeId};
use crate::ops::EvalArgs;
use crate::tensor::Tensor;
use crate::verify::verify;

/// The most bytes the interpreter holds at once unless told otherwise (4 GiB). It keeps every
/// intermediate value, so this bounds the sum of all node sizes.
pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;

/// Evaluate `f` on `inputs` (in signature order).
pub fn eval(f: &Function, inputs: &[Tensor]) -> Result<Tensor, EvalError> {
    eval_with_limit(f, inputs, DEFAULT_MAX_BYTES)
}

/// Evaluate with a memory budget: a graph whose values need more than `max_bytes` in all is
/// rejected before anything is allocated.
pub fn eval_with_limit(
    f: &Function,
    inputs: &[Tensor],
    max_bytes: u64,
) -> Result<Tensor, EvalError> {
    if f.outputs().len() != 1 {
        return Err(EvalError::OutputCount {
            function: f.name.clone(),
            outputs: f.outputs().len(),
        });
    }
    let mut v = eval_outputs_with_limit(f, inputs, max_bytes)?;
    v.pop().ok_or_else(|| EvalError::Internal("output was not computed".into()))
}

/// Evaluate every output of `f`.
pub fn eval_outputs(f: &Function, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
    eval_outputs_with_limit(f, inputs, DEFAULT_MAX_BYTES)
}

/// Evaluate every output of `f` within a memory budget (see [`eval_with_limit`]).
pub fn eval_outputs_with_limit(
    f: &Function,
    inputs: &[Tensor],
    max_bytes: u64,
) -> Result<Vec<Tensor>, EvalError> {
    let values = eval_nodes_limited(f, inputs, f.outputs(), max_bytes)?;
    f.outputs()
        .iter()
        .map(|o| {
            values
                .get(o)
                .cloned()
                .ok_or_else(|| EvalError::Internal(format!("output {o} was not computed")))
        })
        .collect()
}

/// Evaluate `f` on `inputs` and return the values of the nodes in `wanted` and of every node
/// they depend on.
pub fn eval_nodes(
    f: &Function,
    inputs: &[Tensor],
    wanted: &[NodeId],
) -> Result<HashMap<NodeId, Tensor>, EvalError> {
    eval_nodes_limited(f, inputs, wanted, DEFAULT_MAX_BYTES)
}

fn eval_nodes_limited(
    f: &Function,
    inputs: &[Tensor],
    wanted: &[NodeId],
    max_bytes: u64,
) -> Result<HashMap<NodeId, Tensor>, EvalError> {
    verify(f).map_err(EvalError::Invalid)?;
    check_inputs(f, inputs)?;
    if let Some(n) = wanted.iter().find(|&&n| f.node(n).is_none()) {
        return Err(EvalError::Internal(format!("{n} is not a node of `{}`", f.name)));
    }
    // Only the nodes the wanted ones depend on.
    let needed = f.backward_closure(wanted.iter().copied());
    let needed_bytes = needed.iter().try_fold(0u64, |acc, n| {
        let ty = &f.node(n)?.ty;
        let numel = u64::try_from(ty.shape.checked_numel()?).ok()?;
        acc.checked_add(numel.checked_mul(jjt_npy::DType::item_size(ty.dtype) as u64)?)
    });
    match needed_bytes {
        Some(b) if b <= max_bytes => {}
        _ => return Err(EvalError::TooLarge { needed: needed_bytes, limit: max_bytes }),
    }
    let mut values: HashMap<NodeId, Tensor> = HashMap::new();
    for id in needed.iter() {
        let node = f.node(id).ok_or_else(|| EvalError::Internal(format!("{id} vanished")))?;
        let operands = f.operands(id);
        let args: Vec<&Tensor> = operands
            .iter()
            .map(|o| {
                values
                    .get(o)
                    .ok_or_else(|| EvalError::Internal(format!("{o} used before it was computed")))
            })
            .collect::<Result<_, _>>()?;
        let v = node.op.rule().eval(EvalArgs { x: &args, out: &node.ty, inputs })?;
        if v.ty() != node.ty {
            return Err(EvalError::Internal(format!(
                "{id}: {} produced {} but its type is {}",
                node.op.name(),
                v.ty(),
                node.ty
            )));
        }
        values.insert(id, v);
    }
    Ok(values)
}

/// Check argument count and types against the signature.
pub fn check_inputs(f: &Function, inputs: &[Tensor]) -> Result<(), EvalError> {
    if inputs.len() != f.params().len() {
        return Err(EvalError::InputCount {
            function: f.name.clone(),
            expected: f.params().len(),
            got: inputs.len(),
        });
    }
    for (p, t) in f.params().iter().zip(inputs) {
        if t.data.len() != t.shape.checked_numel().unwrap_or(usize::MAX) {
            return Err(EvalError::InputData {
                name: p.name.clone(),
                shape: t.shape.clone(),
                len: t.data.len(),
            });
        }
        if t.ty() != p.ty {
            return Err(EvalError::InputType {
                name: p.name.clone(),
                expected: p.ty.clone(),
                actual: t.ty(),
            });
        }
    }
    Ok(())
}
