//! `broadcast_to(x, shape=[..])`: NumPy broadcasting. The operand's axes align with the last
//! axes of `shape`; each is either equal to the target size or 1 (stretched).

use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits, write_list};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use super::{ReduceKind, gather_view, lead, linear_transpose};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::Tensor;
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
    fn info(&self) -> OpInfo {
        OpInfo::new("broadcast_to", Arity::Fixed(1), Traits::LINEAR)
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
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        // The operand's axes are the output's last ones; new and stretched (size-1) axes have
        // stride 0: every index along them reads the same element.
        let from = a.x[0].shape.dims();
        let strides = a.x[0].shape.strides();
        let mut steps = vec![0; a.out.rank() - from.len()];
        steps.extend((0..from.len()).map(|j| if from[j] == 1 { 0 } else { strides[j] }));
        Ok(gather_view(a.x[0], a.out, 0, &steps))
    }
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult {
        a.linear(b, self.clone())
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        // Sum over the axes broadcasting created or stretched, then restore the size-1 axes.
        linear_transpose(operands, |ty| {
            let axes: Vec<i64> =
                self.broadcast_axes(&ty.shape).into_iter().map(|a| a as i64).collect();
            let summed =
                if axes.is_empty() { ct } else { b.reduce(ReduceKind::Sum, ct, Some(&axes))? };
            b.reshape(summed, ty.shape.clone())
        })
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        a.leading(b, |b, v| {
            // Align the operand's batch axis with the target's new leading axis.
            let from = b.ty(v[0])?.shape.clone();
            let mut aligned = vec![a.size];
            aligned.extend(std::iter::repeat_n(1, self.shape.rank() - (from.rank() - 1)));
            aligned.extend_from_slice(&from.dims()[1..]);
            let r = b.reshape(v[0], aligned)?;
            b.broadcast_to(r, &Shape(lead(a.size, self.shape.dims())))
        })
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
