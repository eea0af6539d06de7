//! `reshape(x, shape=[..])`: same elements in row-major order, new shape of equal size.

use super::{Arity, CallArgs, OpRule, ParseOp, Traits, write_list};
use super::{Lin, Op, batched_front, linear_jvp};
use crate::builder::FunctionBuilder;
use crate::error::IrError;
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
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn arity(&self) -> Arity {
        Arity::Fixed(1)
    }
    fn traits(&self) -> Traits {
        Traits { linear: true, ..Traits::default() }
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let x = operands[0];
        if self.shape.checked_numel() != Some(x.numel()) {
            return Err(TypeError::ReshapeSize { from: x.shape.clone(), to: self.shape.clone() });
        }
        Ok(x.with_shape(self.shape.clone()))
    }
    fn eval(
        &self,
        operands: &[&Tensor],
        _: &TensorType,
        _: &[Tensor],
    ) -> Result<Tensor, EvalError> {
        Ok(Tensor { shape: self.shape.clone(), data: operands[0].data.clone() })
    }
    fn jvp(
        &self,
        b: &mut FunctionBuilder,
        _: &[NodeId],
        t: &[Option<NodeId>],
        _: NodeId,
    ) -> Result<Option<NodeId>, IrError> {
        linear_jvp(b, Op::Reshape(self.clone()), t)
    }

    fn transpose(
        &self,
        b: &mut FunctionBuilder,
        ct: NodeId,
        operands: &[Lin],
    ) -> Result<Vec<Option<NodeId>>, IrError> {
        match &operands[0] {
            Lin::Linear(ty) => Ok(vec![Some(b.reshape(ct, ty.shape.clone())?)]),
            Lin::Known(_) => Ok(vec![None]),
        }
    }
    fn batch(
        &self,
        b: &mut FunctionBuilder,
        x: &[NodeId],
        dims: &[Option<usize>],
        size: usize,
    ) -> Result<(NodeId, Option<usize>), IrError> {
        let v = batched_front(b, x, dims, size)?;
        let mut shape = vec![size];
        shape.extend_from_slice(self.shape.dims());
        Ok((b.reshape(v[0], shape)?, Some(0)))
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
