//! `reshape(x, shape=[..])`: same elements in row-major order, new shape of equal size.

use super::{Arity, CallArgs, OpRule, ParseOp, Traits, write_list};
use crate::error::{EvalError, TypeError};
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
            return Err(TypeError::Invalid(format!(
                "cannot reshape {} ({} elements) to {}",
                x.shape,
                x.numel(),
                self.shape
            )));
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
    fn write_attrs(&self, out: &mut String) {
        write_list(out, "shape", self.shape.dims());
    }
}

impl ParseOp for Reshape {
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        (name == "reshape").then(|| Ok(Reshape { shape: Shape(args.take_usizes("shape")?) }))
    }
}
