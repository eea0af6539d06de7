//! `select(pred, on_true, on_false)`: elementwise choice. `pred` is bool; the three operands
//! have one shape (the builder broadcasts), the two branches one dtype.
//!
//! The predicate has no tangent; the tangent of the untaken branch is discarded, and in reverse
//! mode the untaken branch receives a zero cotangent (see docs/ad.md for what that means at
//! points where the branch itself is not finite).

use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits, bad_dtype, same_type};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use super::{not_linear, zeros};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::{Data, Tensor};
use crate::types::{DType, TensorType};

/// Elementwise `pred ? on_true : on_false`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Select;

impl OpRule for Select {
    fn info(&self) -> OpInfo {
        OpInfo::new("select", Arity::Fixed(3), Traits::ELEMENTWISE)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        let (p, a, b) = (operands[0], operands[1], operands[2]);
        if p.dtype != DType::Bool {
            return Err(TypeError::NotBool(p.dtype));
        }
        same_type(a, b)?;
        if p.shape != a.shape {
            return Err(TypeError::ShapeMismatch(p.shape.clone(), a.shape.clone()));
        }
        Ok(a.clone())
    }
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        let operands = a.x;
        fn pick<T: Copy>(p: &[bool], a: &[T], b: &[T]) -> Vec<T> {
            p.iter().zip(a.iter().zip(b)).map(|(&c, (&x, &y))| if c { x } else { y }).collect()
        }
        let Data::Bool(p) = &operands[0].data else { return Err(bad_dtype("select")) };
        let data = match (&operands[1].data, &operands[2].data) {
            (Data::F32(a), Data::F32(b)) => Data::F32(pick(p, a, b)),
            (Data::F64(a), Data::F64(b)) => Data::F64(pick(p, a, b)),
            (Data::I32(a), Data::I32(b)) => Data::I32(pick(p, a, b)),
            (Data::Bool(a), Data::Bool(b)) => Data::Bool(pick(p, a, b)),
            _ => return Err(bad_dtype("select")),
        };
        Ok(Tensor { shape: operands[1].shape.clone(), data })
    }
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult {
        let (x, t) = (a.x, a.t);
        let ty = b.ty(x[1])?.clone();
        let (ta, tb) = match (t[1], t[2]) {
            (None, None) => return Ok(None),
            (Some(a), Some(c)) => (a, c),
            (Some(a), None) => (a, zeros(b, &ty)?),
            (None, Some(c)) => (zeros(b, &ty)?, c),
        };
        b.select(x[0], ta, tb).map(Some)
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        let Lin::Known(p) = operands[0] else {
            return Err(not_linear("select", "the predicate must be known"));
        };
        let ty = b.ty(ct)?.clone();
        let z = zeros(b, &ty)?;
        let on_true = if operands[1].is_linear() { Some(b.select(p, ct, z)?) } else { None };
        let on_false = if operands[2].is_linear() { Some(b.select(p, z, ct)?) } else { None };
        Ok(vec![None, on_true, on_false])
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        a.elementwise(b, |b, v| b.select(v[0], v[1], v[2]))
    }
    fn write_attrs(&self, _: &mut String) {}
}

impl ParseOp for Select {
    fn names() -> Vec<&'static str> {
        vec!["select"]
    }
    fn parse(name: &str, _: &mut CallArgs) -> Option<Result<Self, String>> {
        (name == "select").then_some(Ok(Select))
    }
}
