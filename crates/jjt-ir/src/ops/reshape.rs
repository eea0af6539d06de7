//! `reshape(x, shape=[..])`: same elements in row-major order, new shape of equal size.

use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits, write_list};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use super::{lead, linear_transpose};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::Tensor;
use crate::types::{Shape, TensorType};

/// Reshape to `shape`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reshape {
    /// Target shape.
    pub shape: Shape,
}

impl OpRule for Reshape {
    fn info(&self) -> OpInfo {
        OpInfo::new("reshape", Arity::Fixed(1), Traits::LINEAR)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let x = operands[0];
        if self.shape.checked_numel() != Some(x.numel()) {
            return Err(TypeError::ReshapeSize { from: x.shape.clone(), to: self.shape.clone() });
        }
        Ok(x.with_shape(self.shape.clone()))
    }
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        Ok(Tensor { shape: self.shape.clone(), data: a.x[0].data.clone() })
    }
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult {
        a.linear(b, self.clone())
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        linear_transpose(operands, |ty| b.reshape(ct, ty.shape.clone()))
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        a.leading(b, |b, v| b.reshape(v[0], lead(a.size, self.shape.dims())))
    }
    fn write_attrs(&self, out: &mut String) {
        write_list(out, "shape", self.shape.dims());
    }
}

impl ParseOp for Reshape {
    fn names() -> Vec<&'static str> {
        vec!["reshape"]
    }
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        (name == "reshape").then(|| Ok(Reshape { shape: Shape(args.take_usizes("shape")?) }))
    }
}
