//! `broadcast_to(x, shape=[..])`: NumPy broadcasting. The operand's axes align with the last
//! axes of `shape`; each is either equal to the target size or 1 (stretched).

use super::{Arity, CallArgs, OpRule, ParseOp, Traits, write_list};
use super::{Lin, Op, ReduceKind, batched_front, linear_jvp};
use crate::builder::FunctionBuilder;
use crate::error::IrError;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::{Tensor, for_each_index};
use crate::types::{Shape, TensorType};

/// Broadcast to `shape`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BroadcastTo {
    /// Target shape.
    pub shape: Shape,
}

impl BroadcastTo {
    /// The output axes that the operand does not have or has with size 1 where the target is
    /// not 1: the axes a transpose rule sums over.
    pub fn broadcast_axes(&self, from: &Shape) -> Vec<usize> {
        let lead = self.shape.rank() - from.rank().min(self.shape.rank());
        (0..self.shape.rank())
            .filter(|&i| i < lead || (from.dims()[i - lead] == 1 && self.shape.dims()[i] != 1))
            .collect()
    }
}

impl OpRule for BroadcastTo {
    fn name(&self) -> &'static str {
        "broadcast_to"
    }
    fn arity(&self) -> Arity {
        Arity::Fixed(1)
    }
    fn traits(&self) -> Traits {
        Traits { linear: true, ..Traits::default() }
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let x = operands[0];
        let (from, to) = (x.shape.dims(), self.shape.dims());
        let fits = from.len() <= to.len()
            && from.iter().zip(&to[to.len() - from.len()..]).all(|(&a, &b)| a == b || a == 1);
        if !fits {
            return Err(TypeError::Broadcast(x.shape.clone(), self.shape.clone()));
        }
        Ok(x.with_shape(self.shape.clone()))
    }
    fn eval(
        &self,
        operands: &[&Tensor],
        out: &TensorType,
        _: &[Tensor],
    ) -> Result<Tensor, EvalError> {
        let x = operands[0];
        let from = x.shape.dims();
        let lead = out.rank() - from.len();
        let strides = x.shape.strides();
        let mut index = Vec::with_capacity(out.numel());
        for_each_index(out.shape.dims(), |idx| {
            let flat = (0..from.len())
                .map(|j| if from[j] == 1 { 0 } else { idx[lead + j] * strides[j] })
                .sum();
            index.push(flat);
        });
        Ok(x.gather(out.shape.clone(), &index))
    }
    fn jvp(
        &self,
        b: &mut FunctionBuilder,
        _: &[NodeId],
        t: &[Option<NodeId>],
        _: NodeId,
    ) -> Result<Option<NodeId>, IrError> {
        linear_jvp(b, Op::BroadcastTo(self.clone()), t)
    }

    fn transpose(
        &self,
        b: &mut FunctionBuilder,
        ct: NodeId,
        operands: &[Lin],
    ) -> Result<Vec<Option<NodeId>>, IrError> {
        let Lin::Linear(ty) = &operands[0] else { return Ok(vec![None]) };
        // Sum over the axes broadcasting created or stretched, then restore the size-1 axes.
        let axes: Vec<i64> = self.broadcast_axes(&ty.shape).into_iter().map(|a| a as i64).collect();
        let summed = if axes.is_empty() { ct } else { b.reduce(ReduceKind::Sum, ct, Some(&axes))? };
        Ok(vec![Some(b.reshape(summed, ty.shape.clone())?)])
    }
    fn batch(
        &self,
        b: &mut FunctionBuilder,
        x: &[NodeId],
        dims: &[Option<usize>],
        size: usize,
    ) -> Result<(NodeId, Option<usize>), IrError> {
        let v = batched_front(b, x, dims, size)?;
        // Align the operand's batch axis with the target's new leading axis.
        let from = b.ty(v[0])?.shape.clone();
        let mut aligned = vec![size];
        aligned.extend(std::iter::repeat_n(1, self.shape.rank() - (from.rank() - 1)));
        aligned.extend_from_slice(&from.dims()[1..]);
        let r = b.reshape(v[0], aligned)?;
        let mut target = vec![size];
        target.extend_from_slice(self.shape.dims());
        Ok((b.broadcast_to(r, &Shape(target))?, Some(0)))
    }
    fn write_attrs(&self, out: &mut String) {
        write_list(out, "shape", self.shape.dims());
    }
}

impl ParseOp for BroadcastTo {
    fn names() -> Vec<&'static str> {
        vec!["broadcast_to"]
    }
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        (name == "broadcast_to")
            .then(|| Ok(BroadcastTo { shape: Shape(args.take_usizes("shape")?) }))
    }
}
