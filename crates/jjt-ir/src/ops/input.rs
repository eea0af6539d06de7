//! `Input`: the function's argument number `index`. Declared in the signature, never written
//! as a call in the text format.

use super::Lin;
use super::{Arity, CallArgs, OpRule, ParseOp, Traits};
use crate::builder::FunctionBuilder;
use crate::error::IrError;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
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
    fn jvp(
        &self,
        _: &mut FunctionBuilder,
        _: &[NodeId],
        _: &[Option<NodeId>],
        _: NodeId,
    ) -> Result<Option<NodeId>, IrError> {
        // Inputs have no operands; the transforms bind their tangents directly.
        Ok(None)
    }
    fn transpose(
        &self,
        _: &mut FunctionBuilder,
        _: NodeId,
        _: &[Lin],
    ) -> Result<Vec<Option<NodeId>>, IrError> {
        Ok(vec![])
    }
    fn batch(
        &self,
        b: &mut FunctionBuilder,
        _: &[NodeId],
        _: &[Option<usize>],
        _: usize,
    ) -> Result<(NodeId, Option<usize>), IrError> {
        let _ = b;
        Err(IrError::RuleMisuse(format!(
            "input #{} is bound by the batching transform, not by a rule",
            self.index
        )))
    }
    fn write_attrs(&self, _: &mut String) {}
}

impl ParseOp for Input {
    fn names() -> Vec<&'static str> {
        vec!["input"]
    }
    fn parse(_: &str, _: &mut CallArgs) -> Option<Result<Self, String>> {
        None
    }
}
