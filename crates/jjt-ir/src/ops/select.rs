//! `select(pred, on_true, on_false)`: elementwise choice. `pred` is bool; the three operands
//! have one shape (the builder broadcasts), the two branches one dtype.

use super::{Arity, CallArgs, OpRule, ParseOp, Traits, bad_dtype, same_type};
use crate::error::{EvalError, TypeError};
use crate::tensor::{Data, Tensor};
use crate::types::{DType, TensorType};

/// Elementwise `pred ? on_true : on_false`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Select;

impl OpRule for Select {
    fn name(&self) -> &'static str {
        "select"
    }
    fn arity(&self) -> Arity {
        Arity::Fixed(3)
    }
    fn traits(&self) -> Traits {
        Traits { elementwise: true, ..Traits::default() }
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
    fn eval(
        &self,
        operands: &[&Tensor],
        _: &TensorType,
        _: &[Tensor],
    ) -> Result<Tensor, EvalError> {
        fn pick<T: Copy>(p: &[bool], a: &[T], b: &[T]) -> Vec<T> {
            p.iter().zip(a.iter().zip(b)).map(|(&c, (&x, &y))| if c { x } else { y }).collect()
        }
        let Data::Bool(p) = &operands[0].data else { return Err(bad_dtype("select")) };
        let data = match (&operands[1].data, &operands[2].data) {
            (Data::F32(a), Data::F32(b)) => Data::F32(pick(p, a, b)),
            (Data::F64(a), Data::F64(b)) => Data::F64(pick(p, a, b)),
            (Data::Bool(a), Data::Bool(b)) => Data::Bool(pick(p, a, b)),
            _ => return Err(bad_dtype("select")),
        };
        Ok(Tensor { shape: operands[1].shape.clone(), data })
    }
    fn write_attrs(&self, _: &mut String) {}
}

impl ParseOp for Select {
    fn parse(name: &str, _: &mut CallArgs) -> Option<Result<Self, String>> {
        (name == "select").then_some(Ok(Select))
    }
}
