//! Elementwise comparisons producing bool masks, IEEE semantics (any comparison with NaN is
//! false). Operands have equal dtype and shape; ordered comparisons need floats or `i32`
//! (signed order), `eq` also accepts bool.

use super::not_linear;
use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits, bad_dtype, same_type, want_float};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::{Data, Tensor};
use crate::types::{DType, TensorType};

/// An elementwise comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Compare {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
}

impl Compare {
    /// Every comparison.
    pub const ALL: [Compare; 5] = [Compare::Gt, Compare::Ge, Compare::Lt, Compare::Le, Compare::Eq];

    /// Name in the text format.
    pub fn op_name(self) -> &'static str {
        match self {
            Compare::Gt => "gt",
            Compare::Ge => "ge",
            Compare::Lt => "lt",
            Compare::Le => "le",
            Compare::Eq => "eq",
        }
    }

    /// The scalar predicate.
    pub fn apply<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Compare::Gt => a > b,
            Compare::Ge => a >= b,
            Compare::Lt => a < b,
            Compare::Le => a <= b,
            Compare::Eq => a == b,
        }
    }
}

impl OpRule for Compare {
    fn info(&self) -> OpInfo {
        let traits = Traits { commutative: *self == Compare::Eq, ..Traits::ELEMENTWISE };
        OpInfo::new(self.op_name(), Arity::Fixed(2), traits)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        same_type(operands[0], operands[1])?;
        if *self != Compare::Eq && operands[0].dtype != DType::I32 {
            want_float(operands[0])?;
        }
        Ok(operands[0].with_dtype(DType::Bool))
    }
    fn eval(&self, args: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        let (a, b) = (args.x[0], args.x[1]);
        let out: Vec<bool> = match (&a.data, &b.data) {
            (Data::F32(x), Data::F32(y)) => {
                x.iter().zip(y).map(|(p, q)| self.apply(p, q)).collect()
            }
            (Data::F64(x), Data::F64(y)) => {
                x.iter().zip(y).map(|(p, q)| self.apply(p, q)).collect()
            }
            (Data::I32(x), Data::I32(y)) => {
                x.iter().zip(y).map(|(p, q)| self.apply(p, q)).collect()
            }
            (Data::Bool(x), Data::Bool(y)) => {
                x.iter().zip(y).map(|(p, q)| self.apply(p, q)).collect()
            }
            _ => return Err(bad_dtype(self.op_name())),
        };
        Ok(Tensor { shape: a.shape.clone(), data: Data::Bool(out) })
    }
    fn jvp(&self, _: &mut FunctionBuilder, _: JvpArgs<'_>) -> JvpResult {
        // A bool result has no tangent.
        Ok(None)
    }
    fn transpose(&self, _: &mut FunctionBuilder, _: NodeId, _: &[Lin]) -> TransposeResult {
        Err(not_linear(self.op_name(), "comparisons are not linear"))
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        a.elementwise(b, |b, v| b.compare(*self, v[0], v[1]))
    }
    fn write_attrs(&self, _: &mut String) {}
}

impl ParseOp for Compare {
    fn names() -> Vec<&'static str> {
        Compare::ALL.iter().map(|k| k.op_name()).collect()
    }
    fn parse(name: &str, _: &mut CallArgs) -> Option<Result<Self, String>> {
        Compare::ALL.into_iter().find(|c| c.op_name() == name).map(Ok)
    }
}
