//! `convert(x, to=f64)`: element type conversion. f32↔f64 rounds to nearest; bool→float and
//! bool→i32 give 0 or 1; float→bool and i32→bool are `x != 0` (NaN is true, as in NumPy);
//! i32→float rounds to nearest (exact for f64, and for f32 up to 2²⁴ in magnitude);
//! float→i32 truncates toward zero and saturates (±inf and values beyond the range give
//! `i32::MAX`/`i32::MIN`), NaN gives 0: Rust's `as i32`, and what the JIT emits (no trapping
//! instruction).

use std::fmt::Write as _;

use super::not_linear;
use super::{Arity, AttrValue, CallArgs, OpInfo, OpRule, ParseOp, Traits};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::tensor::{Data, Tensor};
use crate::types::is_float;
use crate::types::{DType, TensorType};

/// Convert to dtype `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Convert {
    /// Target dtype.
    pub to: DType,
}

impl OpRule for Convert {
    fn info(&self) -> OpInfo {
        OpInfo::new("convert", Arity::Fixed(1), Traits::ELEMENTWISE)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        Ok(operands[0].with_dtype(self.to))
    }
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        let x = a.x[0];
        let data = match (&x.data, self.to) {
            (Data::F32(v), DType::F64) => Data::F64(v.iter().map(|&a| f64::from(a)).collect()),
            (Data::F64(v), DType::F32) => Data::F32(v.iter().map(|&a| a as f32).collect()),
            (Data::Bool(v), DType::F32) => {
                Data::F32(v.iter().map(|&b| f32::from(u8::from(b))).collect())
            }
            (Data::Bool(v), DType::F64) => {
                Data::F64(v.iter().map(|&b| f64::from(u8::from(b))).collect())
            }
            (Data::F32(v), DType::Bool) => Data::Bool(v.iter().map(|&a| a != 0.0).collect()),
            (Data::F64(v), DType::Bool) => Data::Bool(v.iter().map(|&a| a != 0.0).collect()),
            (Data::F32(v), DType::I32) => Data::I32(v.iter().map(|&a| a as i32).collect()),
            (Data::F64(v), DType::I32) => Data::I32(v.iter().map(|&a| a as i32).collect()),
            (Data::I32(v), DType::F32) => Data::F32(v.iter().map(|&a| a as f32).collect()),
            (Data::I32(v), DType::F64) => Data::F64(v.iter().map(|&a| f64::from(a)).collect()),
            (Data::I32(v), DType::Bool) => Data::Bool(v.iter().map(|&a| a != 0).collect()),
            (Data::Bool(v), DType::I32) => Data::I32(v.iter().map(|&b| i32::from(b)).collect()),
            (d, _) => d.clone(),
        };
        Ok(Tensor { shape: x.shape.clone(), data })
    }
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult {
        let from = b.ty(a.x[0])?.dtype;
        match a.t[0] {
            Some(t) if is_float(from) && is_float(self.to) => b.convert(t, self.to).map(Some),
            _ => Ok(None),
        }
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        match &operands[0] {
            Lin::Linear(ty) if is_float(ty.dtype) && is_float(self.to) => {
                Ok(vec![Some(b.convert(ct, ty.dtype)?)])
            }
            Lin::Linear(_) => {
                Err(not_linear("convert", "conversions to or from bool or i32 are not linear"))
            }
            Lin::Known(_) => Ok(vec![None]),
        }
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        Ok((b.convert(a.x[0], self.to)?, a.dims[0]))
    }
    fn write_attrs(&self, out: &mut String) {
        let _ = write!(out, ", to={}", self.to);
    }
}

impl ParseOp for Convert {
    fn names() -> Vec<&'static str> {
        vec!["convert"]
    }
    fn parse(name: &str, args: &mut CallArgs) -> Option<Result<Self, String>> {
        if name != "convert" {
            return None;
        }
        Some(match args.take("to") {
            Some(AttrValue::DType(to)) => Ok(Convert { to }),
            _ => Err("missing attribute `to=f32|f64|i32|bool`".into()),
        })
    }
}
