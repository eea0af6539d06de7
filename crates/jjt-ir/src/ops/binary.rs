//! Elementwise binary ops on operands of equal dtype and shape (the builder inserts the
//! broadcasts NumPy's rules call for). One row per op.
//!
//! Conventions: `maximum`/`minimum` propagate NaN (like `np.maximum`) and at ties return the
//! first operand; `pow` is the platform's `powf`.
//!
//! `add`, `sub`, `mul`, `maximum` and `minimum` also accept `i32`, with two's-complement
//! wrapping arithmetic (`i32::MAX + 1 = i32::MIN`, as XLA and the JIT's instructions do);
//! `div` and `pow` refuse it (`TypeError::NotFloat`): there is no integer division.
//!
//! Derivatives at special points (asserted in jjt-ad's `nan_suite` test): at a tie,
//! `maximum`/`minimum` split the tangent evenly between the operands (as JAX does), and give 0
//! to both where a NaN is involved; `d(a^c)/da` is 0 where `c = 0` and `d(a^c)/dc` uses
//! `log(1)` where `a = 0`, so neither produces NaN at 0. Transposition: `add`/`sub` are linear
//! in both operands, `mul` in either one (not both), `div` in its numerator.

use super::not_linear;
use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits, bad_dtype, same_type, want_float};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, IrError, TypeError};
use crate::graph::NodeId;
use crate::ops::{Compare, Unary};
use crate::tensor::{Data, Float, Tensor};
use crate::types::{DType, TensorType};

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

    /// The scalar function on `i32` (wrapping), or `None` for ops integers do not have.
    pub fn integer(self) -> Option<fn(i32, i32) -> i32> {
        match self {
            Binary::Add => Some(i32::wrapping_add),
            Binary::Sub => Some(i32::wrapping_sub),
            Binary::Mul => Some(i32::wrapping_mul),
            Binary::Maximum => Some(std::cmp::max),
            Binary::Minimum => Some(std::cmp::min),
            Binary::Div | Binary::Pow => None,
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
    fn info(&self) -> OpInfo {
        OpInfo::new(self.op_name(), Arity::Fixed(2), self.op_traits())
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        same_type(operands[0], operands[1])?;
        if operands[0].dtype == DType::I32 && self.integer().is_some() {
            return Ok(operands[0].clone());
        }
        want_float(operands[0])?;
        Ok(operands[0].clone())
    }
    fn eval(&self, args: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        let (a, b) = (args.x[0], args.x[1]);
        let data = match (&a.data, &b.data) {
            (Data::F32(x), Data::F32(y)) => {
                Data::F32(x.iter().zip(y).map(|(&p, &q)| self.apply(p, q)).collect())
            }
            (Data::F64(x), Data::F64(y)) => {
                Data::F64(x.iter().zip(y).map(|(&p, &q)| self.apply(p, q)).collect())
            }
            (Data::I32(x), Data::I32(y)) => {
                let f = self.integer().ok_or_else(|| bad_dtype(self.op_name()))?;
                Data::I32(x.iter().zip(y).map(|(&p, &q)| f(p, q)).collect())
            }
            _ => return Err(bad_dtype(self.op_name())),
        };
        Ok(Tensor { shape: a.shape.clone(), data })
    }
    fn jvp(&self, b: &mut FunctionBuilder, args: JvpArgs<'_>) -> JvpResult {
        let (a, c, y) = (args.x[0], args.x[1], args.y);
        let (ta, tc) = (args.t[0], args.t[1]);
        let ty = b.ty(a)?.clone();
        let mul = |b: &mut FunctionBuilder, p, q| b.binary(Binary::Mul, p, q);
        // Tangent terms of each operand, summed below.
        let (da, dc) = match self {
            Binary::Add => (ta, tc),
            Binary::Sub => (ta, tc.map(|t| b.unary(Unary::Neg, t)).transpose()?),
            Binary::Mul => {
                (ta.map(|t| mul(b, t, c)).transpose()?, tc.map(|t| mul(b, a, t)).transpose()?)
            }
            // d(a/c) = ta/c - tc·(a/c)/c.
            Binary::Div => {
                let da = ta.map(|t| b.binary(Binary::Div, t, c)).transpose()?;
                let dc = match tc {
                    Some(t) => {
                        let q = b.binary(Binary::Div, y, c)?;
                        let p = mul(b, t, q)?;
                        Some(b.unary(Unary::Neg, p)?)
                    }
                    None => None,
                };
                (da, dc)
            }
            // d(a^c) = ta·c·a^(c-1) (0 where c = 0) + tc·log(a)·a^c (log(1) where a = 0).
            Binary::Pow => {
                let zero = b.full(ty.clone(), 0.0)?;
                let one = b.full(ty.clone(), 1.0)?;
                let da = match ta {
                    Some(t) => {
                        let cm1 = b.binary(Binary::Sub, c, one)?;
                        let p = b.binary(Binary::Pow, a, cm1)?;
                        let cp = mul(b, c, p)?;
                        let c0 = b.compare(Compare::Eq, c, zero)?;
                        let coef = b.select(c0, zero, cp)?;
                        Some(mul(b, t, coef)?)
                    }
                    None => None,
                };
                let dc = match tc {
                    Some(t) => {
                        let a0 = b.compare(Compare::Eq, a, zero)?;
                        let safe = b.select(a0, one, a)?;
                        let la = b.unary(Unary::Log, safe)?;
                        let coef = mul(b, la, y)?;
                        Some(mul(b, t, coef)?)
                    }
                    None => None,
                };
                (da, dc)
            }
            // Ties split the tangent evenly, as in JAX: coefficient 1 for the larger operand,
            // 1/2 each at a tie, 0 otherwise (also where a NaN is involved).
            Binary::Maximum | Binary::Minimum => {
                let win = if *self == Binary::Maximum { Compare::Gt } else { Compare::Lt };
                let zero = b.full(ty.clone(), 0.0)?;
                let half = b.full(ty.clone(), 0.5)?;
                let one = b.full(ty.clone(), 1.0)?;
                let tie = b.compare(Compare::Eq, a, c)?;
                let at_tie = b.select(tie, half, zero)?;
                let coef = |b: &mut FunctionBuilder,
                            p,
                            q,
                            t: Option<NodeId>|
                 -> Result<Option<NodeId>, IrError> {
                    let Some(t) = t else { return Ok(None) };
                    let wins = b.compare(win, p, q)?;
                    let k = b.select(wins, one, at_tie)?;
                    Ok(Some(b.binary(Binary::Mul, t, k)?))
                };
                let da = coef(b, a, c, ta)?;
                let dc = coef(b, c, a, tc)?;
                (da, dc)
            }
        };
        match (da, dc) {
            (Some(p), Some(q)) => b.binary(Binary::Add, p, q).map(Some),
            (p, q) => Ok(p.or(q)),
        }
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        let (l, r) = (&operands[0], &operands[1]);
        match self {
            Binary::Add => Ok(vec![l.is_linear().then_some(ct), r.is_linear().then_some(ct)]),
            Binary::Sub => {
                let neg = if r.is_linear() { Some(b.unary(Unary::Neg, ct)?) } else { None };
                Ok(vec![l.is_linear().then_some(ct), neg])
            }
            Binary::Mul => match (l, r) {
                (Lin::Linear(_), Lin::Known(k)) => {
                    Ok(vec![Some(b.binary(Binary::Mul, ct, *k)?), None])
                }
                (Lin::Known(k), Lin::Linear(_)) => {
                    Ok(vec![None, Some(b.binary(Binary::Mul, *k, ct)?)])
                }
                (Lin::Known(_), Lin::Known(_)) => Ok(vec![None, None]),
                (Lin::Linear(_), Lin::Linear(_)) => {
                    Err(not_linear("mul", "both factors are linear (the product is quadratic)"))
                }
            },
            Binary::Div => match (l, r) {
                (Lin::Linear(_), Lin::Known(k)) => {
                    Ok(vec![Some(b.binary(Binary::Div, ct, *k)?), None])
                }
                (_, Lin::Linear(_)) => Err(not_linear("div", "the divisor is linear")),
                (Lin::Known(_), Lin::Known(_)) => Ok(vec![None, None]),
            },
            Binary::Pow | Binary::Maximum | Binary::Minimum => {
                Err(not_linear(self.op_name(), "the op is not linear in either operand"))
            }
        }
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        a.elementwise(b, |b, v| b.binary(*self, v[0], v[1]))
    }
    fn write_attrs(&self, _: &mut String) {}
}

impl ParseOp for Binary {
    fn names() -> Vec<&'static str> {
        Binary::ALL.iter().map(|k| k.op_name()).collect()
    }
    fn parse(name: &str, _: &mut CallArgs) -> Option<Result<Self, String>> {
        Binary::ALL.into_iter().find(|b| b.op_name() == name).map(Ok)
    }
}
