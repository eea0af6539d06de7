//! Elementwise binary ops on operands of equal dtype and shape (the builder inserts the
//! broadcasts NumPy's rules call for). One row per op.
//!
//! Conventions: `maximum`/`minimum` propagate NaN (like `np.maximum`) and at ties return the
//! first operand; `pow` is the platform's `powf`.

use super::{Arity, CallArgs, OpRule, ParseOp, Traits, bad_dtype, same_type, want_float};
use crate::error::{EvalError, TypeError};
use crate::tensor::{Data, Float, Tensor};
use crate::types::TensorType;

/// An elementwise binary op on floats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Maximum,
    Minimum,
}

impl Binary {
    /// Every binary op.
    pub const ALL: [Binary; 7] = [
        Binary::Add,
        Binary::Sub,
        Binary::Mul,
        Binary::Div,
        Binary::Pow,
        Binary::Maximum,
        Binary::Minimum,
    ];

    /// Name in the text format.
    pub fn op_name(self) -> &'static str {
        match self {
            Binary::Add => "add",
            Binary::Sub => "sub",
            Binary::Mul => "mul",
            Binary::Div => "div",
            Binary::Pow => "pow",
            Binary::Maximum => "maximum",
            Binary::Minimum => "minimum",
        }
    }

    /// The scalar function.
    pub fn apply<T: Float>(self, a: T, b: T) -> T {
        match self {
            Binary::Add => a.add(b),
            Binary::Sub => a.sub(b),
            Binary::Mul => a.mul(b),
            Binary::Div => a.div(b),
            Binary::Pow => a.powf(b),
            Binary::Maximum => {
                if a.is_nan() || b.is_nan() {
                    a.add(b)
                } else if b > a {
                    b
                } else {
                    a
                }
            }
            Binary::Minimum => {
                if a.is_nan() || b.is_nan() {
                    a.add(b)
                } else if b < a {
                    b
                } else {
                    a
                }
            }
        }
    }

    /// Static properties of each row.
    pub fn op_traits(self) -> Traits {
        let (linear, commutative) = match self {
            Binary::Add => (true, true),
            Binary::Sub => (true, false),
            Binary::Mul => (false, true),
            Binary::Div | Binary::Pow => (false, false),
            Binary::Maximum | Binary::Minimum => (false, true),
        };
        Traits { elementwise: true, linear, commutative, constant: false }
    }
}

impl OpRule for Binary {
    fn name(&self) -> &'static str {
        self.op_name()
    }
    fn arity(&self) -> Arity {
        Arity::Fixed(2)
    }
    fn traits(&self) -> Traits {
        self.op_traits()
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        same_type(operands[0], operands[1])?;
        want_float(operands[0])?;
        Ok(operands[0].clone())
    }
    fn eval(
        &self,
        operands: &[&Tensor],
        _: &TensorType,
        _: &[Tensor],
    ) -> Result<Tensor, EvalError> {
        let (a, b) = (operands[0], operands[1]);
        let data = match (&a.data, &b.data) {
            (Data::F32(x), Data::F32(y)) => {
                Data::F32(x.iter().zip(y).map(|(&p, &q)| self.apply(p, q)).collect())
            }
            (Data::F64(x), Data::F64(y)) => {
                Data::F64(x.iter().zip(y).map(|(&p, &q)| self.apply(p, q)).collect())
            }
            _ => return Err(bad_dtype(self.op_name())),
        };
        Ok(Tensor { shape: a.shape.clone(), data })
    }
    fn write_attrs(&self, _: &mut String) {}
}

impl ParseOp for Binary {
    fn parse(name: &str, _: &mut CallArgs) -> Option<Result<Self, String>> {
        Binary::ALL.into_iter().find(|b| b.op_name() == name).map(Ok)
    }
}
