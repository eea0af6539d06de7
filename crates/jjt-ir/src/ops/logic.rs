//! Elementwise logic on bool masks: `and(p, q)`, `or(p, q)`, `not(p)`. Operands are bool with
//! one shape (no broadcasting); the result is bool. One row per op. No tangents (bool values
//! have none), not linear.

use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits, bad_dtype, not_linear};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::{Data, Tensor};
use crate::types::{DType, TensorType};

/// A logic op on bool masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Logic {
    And,
    Or,
    Not,
}

impl Logic {
    /// Every logic op.
    pub const ALL: [Logic; 3] = [Logic::And, Logic::Or, Logic::Not];

    /// Name in the text format.
    pub fn op_name(self) -> &'static str {
        match self {
            Logic::And => "and",
            Logic::Or => "or",
            Logic::Not => "not",
        }
    }

    /// The operand count.
    pub fn operands(self) -> usize {
        match self {
            Logic::And | Logic::Or => 2,
            Logic::Not => 1,
        }
    }

    /// The scalar function (`q` is ignored by `not`).
    pub fn apply(self, p: bool, q: bool) -> bool {
        match self {
            Logic::And => p && q,
            Logic::Or => p || q,
            Logic::Not => !p,
        }
    }
}

impl OpRule for Logic {
    fn info(&self) -> OpInfo {
        let traits = Traits { commutative: *self != Logic::Not, ..Traits::ELEMENTWISE };
        OpInfo::new(self.op_name(), Arity::Fixed(self.operands()), traits)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        if let Some(t) = operands.iter().find(|t| t.dtype != DType::Bool) {
            return Err(TypeError::NotBool(t.dtype));
        }
        if let [a, b] = operands
            && a.shape != b.shape
        {
            return Err(TypeError::ShapeMismatch(a.shape.clone(), b.shape.clone()));
        }
        Ok(operands[0].clone())
    }
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        let Data::Bool(p) = &a.x[0].data else { return Err(bad_dtype(self.op_name())) };
        let out: Vec<bool> = match a.x.get(1).map(|t| &t.data) {
            Some(Data::Bool(q)) => p.iter().zip(q).map(|(&x, &y)| self.apply(x, y)).collect(),
            Some(_) => return Err(bad_dtype(self.op_name())),
            None => p.iter().map(|&x| self.apply(x, false)).collect(),
        };
        Ok(Tensor { shape: a.x[0].shape.clone(), data: Data::Bool(out) })
    }
    fn jvp(&self, _: &mut FunctionBuilder, _: JvpArgs<'_>) -> JvpResult {
        // A bool result has no tangent.
        Ok(None)
    }
    fn transpose(&self, _: &mut FunctionBuilder, _: NodeId, _: &[Lin]) -> TransposeResult {
        Err(not_linear(self.op_name(), "logic ops are not linear"))
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        a.elementwise(b, |b, v| b.add((*self).into(), v))
    }
    fn write_attrs(&self, _: &mut String) {}
}

impl ParseOp for Logic {
    fn names() -> Vec<&'static str> {
        Logic::ALL.iter().map(|k| k.op_name()).collect()
    }
    fn parse(name: &str, _: &mut CallArgs) -> Option<Result<Self, String>> {
        Logic::ALL.into_iter().find(|c| c.op_name() == name).map(Ok)
    }
}
