//! `Input`: the function's argument number `index`. Declared in the signature, never written
//! as a call in the text format.

use super::{Arity, CallArgs, OpRule, ParseOp, Traits};
use crate::error::{EvalError, TypeError};
use crate::tensor::Tensor;
use crate::types::TensorType;

/// The function argument at `index`, of type `ty`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Input {
    /// Position in the signature.
    pub index: usize,
    /// Declared type.
    pub ty: TensorType,
}

impl OpRule for Input {
    fn name(&self) -> &'static str {
        "input"
    }
    fn arity(&self) -> Arity {
        Arity::Fixed(0)
    }
    fn traits(&self) -> Traits {
        Traits::default()
    }
    fn infer(&self, _: &[&TensorType]) -> Result<TensorType, TypeError> {
        Ok(self.ty.clone())
    }
    fn eval(&self, _: &[&Tensor], _: &TensorType, inputs: &[Tensor]) -> Result<Tensor, EvalError> {
        inputs.get(self.index).cloned().ok_or_else(|| {
            EvalError::Internal(format!("no argument bound for input {}", self.index))
        })
    }
    fn write_attrs(&self, _: &mut String) {}
}

impl ParseOp for Input {
    fn parse(_: &str, _: &mut CallArgs) -> Option<Result<Self, String>> {
        None
    }
}
