//! `stop_gradient(x)`: `x` itself, whose derivative is zero (JAX's `lax.stop_gradient`). The
//! JVP has no tangent, so nothing differentiates through it: JAX's numerically stable softmax
//! subtracts `stop_gradient(max(z))`, and losses hold targets constant with it. Evaluation,
//! batching and the JIT treat it as the identity (a view, no copy). It is not linear (its
//! transpose is never asked for: no tangent reaches it).

use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::Tensor;
use crate::types::TensorType;

/// The identity with a zero derivative.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StopGradient;

impl OpRule for StopGradient {
    fn info(&self) -> OpInfo {
        OpInfo::new("stop_gradient", Arity::Fixed(1), Traits::NONE)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        Ok(operands[0].clone())
    }
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        Ok(a.x[0].clone())
    }
    fn jvp(&self, _b: &mut FunctionBuilder, _a: JvpArgs<'_>) -> JvpResult {
        Ok(None)
    }
    fn transpose(
        &self,
        _b: &mut FunctionBuilder,
        _ct: NodeId,
        operands: &[Lin],
    ) -> TransposeResult {
        Ok(vec![None; operands.len()])
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        Ok((b.add(StopGradient.into(), &[a.x[0]])?, a.dims[0]))
    }
    fn write_attrs(&self, _out: &mut String) {}
}

impl ParseOp for StopGradient {
    fn names() -> Vec<&'static str> {
        vec!["stop_gradient"]
    }
    fn parse(name: &str, _args: &mut CallArgs) -> Option<Result<Self, String>> {
        (name == "stop_gradient").then_some(Ok(StopGradient))
    }
}
