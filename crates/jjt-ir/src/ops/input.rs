//! `Input`: the function's argument number `index`. Declared in the signature, never written
//! as a call in the text format.

use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, IrError, TypeError};
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
    fn info(&self) -> OpInfo {
        OpInfo::new("input", Arity::Fixed(0), Traits::NONE)
    }
    fn infer(&self, _: &[&TensorType]) -> Result<TensorType, TypeError> {
        Ok(self.ty.clone())
    }
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        a.inputs.get(self.index).cloned().ok_or_else(|| {
            EvalError::Internal(format!("no argument bound for input {}", self.index))
        })
    }
    fn jvp(&self, _: &mut FunctionBuilder, _: JvpArgs<'_>) -> JvpResult {
        // Inputs have no operands; the transforms bind their tangents directly.
        Ok(None)
    }
    fn transpose(&self, _: &mut FunctionBuilder, _: NodeId, _: &[Lin]) -> TransposeResult {
        Ok(vec![])
    }
    fn batch(&self, _: &mut FunctionBuilder, _: BatchArgs<'_>) -> BatchResult {
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
