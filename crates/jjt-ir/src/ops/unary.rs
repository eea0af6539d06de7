//! Elementwise unary ops: one row per op. Each arm of each `match` below is that op's entry.
//!
//! Conventions at special points (the reference for the JIT and for AD):
//! - `relu(x) = x` if `x > 0`, `+0` if `x <= 0`, NaN for NaN;
//! - `sigmoid(x) = 1 / (1 + exp(-x))` (saturates to 0 and 1 without NaN);
//! - `softplus(x) = max(x, 0) + log1p(exp(-|x|))` (no overflow for large `x`);
//! - `rsqrt(x) = 1 / sqrt(x)`, `recip(x) = 1 / x`, `square(x) = x * x`;
//! - `erf(x)` is musl's `erf` through the `libm` crate (`libm::erf`, `libm::erff`: Rust's std
//!   has no stable `erf`), accurate to about 1 ulp; `erf(±0) = ±0`, `erf(±inf) = ±1`,
//!   NaN for NaN;
//! - everything else is the platform libm function of the same name;
//! - only `neg` accepts `i32` (wrapping: `neg(-2147483648) = -2147483648`); the others
//!   refuse it with `TypeError::NotFloat`.
//!
//! Derivatives at special points (JAX's conventions; asserted in jjt-ad's `nan_suite` test):
//! `relu'(0) = 0`; `|x|'(0) = 0` (sign(0) = 0); `sqrt'(0) = +inf`, so a numerically zero
//! tangent at 0 gives `0·inf = NaN`; `sigmoid` and `tanh` have exactly zero derivative when
//! saturated; `erf'(x) = 2/√π·exp(−x²)` is exactly zero at ±inf (and once `x²` overflows or
//! `exp(−x²)` underflows). Only `neg` is linear; the others' transpose rules report "not linear".

use super::{Arity, CallArgs, OpInfo, OpRule, ParseOp, Traits, bad_dtype, want_float};
use super::{BatchArgs, BatchResult, EvalArgs, JvpArgs, JvpResult, Lin, TransposeResult};
use super::{linear_transpose, not_linear};
use crate::builder::FunctionBuilder;
use crate::error::{EvalError, TypeError};
use crate::graph::NodeId;
use crate::ops::{Binary, Compare};
use crate::tensor::{Data, Float, Tensor};
use crate::types::{DType, TensorType};

/// An elementwise unary op on floats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Unary {
    Neg,
    Abs,
    Exp,
    Log,
    Log1p,
    Expm1,
    Sqrt,
    Rsqrt,
    Recip,
    Square,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Relu,
    Softplus,
    Erf,
}

impl Unary {
    /// Every unary op, in declaration order.
    pub const ALL: [Unary; 17] = [
        Unary::Neg,
        Unary::Abs,
        Unary::Exp,
        Unary::Log,
        Unary::Log1p,
        Unary::Expm1,
        Unary::Sqrt,
        Unary::Rsqrt,
        Unary::Recip,
        Unary::Square,
        Unary::Sin,
        Unary::Cos,
        Unary::Tanh,
        Unary::Sigmoid,
        Unary::Relu,
        Unary::Softplus,
        Unary::Erf,
    ];

    /// Name in the text format.
    pub fn op_name(self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Abs => "abs",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Log1p => "log1p",
            Unary::Expm1 => "expm1",
            Unary::Sqrt => "sqrt",
            Unary::Rsqrt => "rsqrt",
            Unary::Recip => "recip",
            Unary::Square => "square",
            Unary::Sin => "sin",
            Unary::Cos => "cos",
            Unary::Tanh => "tanh",
            Unary::Sigmoid => "sigmoid",
            Unary::Relu => "relu",
            Unary::Softplus => "softplus",
            Unary::Erf => "erf",
        }
    }

    /// The scalar function.
    pub fn apply<T: Float>(self, x: T) -> T {
        match self {
            Unary::Neg => x.neg(),
            Unary::Abs => x.abs(),
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Log1p => x.ln_1p(),
            Unary::Expm1 => x.exp_m1(),
            Unary::Sqrt => x.sqrt(),
            Unary::Rsqrt => T::one().div(x.sqrt()),
            Unary::Recip => T::one().div(x),
            Unary::Square => x.mul(x),
            Unary::Sin => x.sin(),
            Unary::Cos => x.cos(),
            Unary::Tanh => x.tanh(),
            Unary::Sigmoid => T::one().div(T::one().add(x.neg().exp())),
            Unary::Relu => {
                if x.is_nan() || x > T::zero() {
                    x
                } else {
                    T::zero()
                }
            }
            Unary::Softplus => {
                let pos = if x > T::zero() { x } else { T::zero() };
                if x.is_nan() { x } else { pos.add(x.abs().neg().exp().ln_1p()) }
            }
            Unary::Erf => x.erf(),
        }
    }

    /// Whether the op is linear (only `neg`).
    pub fn is_linear(self) -> bool {
        match self {
            Unary::Neg => true,
            Unary::Abs
            | Unary::Exp
            | Unary::Log
            | Unary::Log1p
            | Unary::Expm1
            | Unary::Sqrt
            | Unary::Rsqrt
            | Unary::Recip
            | Unary::Square
            | Unary::Sin
            | Unary::Cos
            | Unary::Tanh
            | Unary::Sigmoid
            | Unary::Relu
            | Unary::Softplus
            | Unary::Erf => false,
        }
    }
}

impl OpRule for Unary {
    fn info(&self) -> OpInfo {
        let traits = Traits { linear: self.is_linear(), ..Traits::ELEMENTWISE };
        OpInfo::new(self.op_name(), Arity::Fixed(1), traits)
    }
    fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        if *self == Unary::Neg && operands[0].dtype == DType::I32 {
            return Ok(operands[0].clone());
        }
        want_float(operands[0])?;
        Ok(operands[0].clone())
    }
    fn eval(&self, a: EvalArgs<'_>) -> Result<Tensor, EvalError> {
        let x = a.x[0];
        let data = match &x.data {
            Data::F32(v) => Data::F32(v.iter().map(|&a| self.apply(a)).collect()),
            Data::F64(v) => Data::F64(v.iter().map(|&a| self.apply(a)).collect()),
            // `neg` wraps (two's complement): -i32::MIN = i32::MIN.
            Data::I32(v) if *self == Unary::Neg => {
                Data::I32(v.iter().map(|&a| a.wrapping_neg()).collect())
            }
            Data::I32(_) | Data::Bool(_) => return Err(bad_dtype(self.op_name())),
        };
        Ok(Tensor { shape: x.shape.clone(), data })
    }
    fn jvp(&self, b: &mut FunctionBuilder, a: JvpArgs<'_>) -> JvpResult {
        let (x, y) = (a.x[0], a.y);
        let Some(t) = a.t[0] else { return Ok(None) };
        let ty = b.ty(x)?.clone();
        // Constants are made where a rule needs them, so no rule leaves unused nodes.
        let k = |b: &mut FunctionBuilder, v: f64| b.full(ty.clone(), v);
        let mul = |b: &mut FunctionBuilder, p, q| b.binary(Binary::Mul, p, q);
        let d = match self {
            Unary::Neg => return a.linear(b, Unary::Neg),
            // sign(x)·t with sign(0) = 0, so |x|'(0) = 0.
            Unary::Abs => {
                let zero = k(b, 0.0)?;
                let pos = b.compare(Compare::Gt, x, zero)?;
                let neg = b.compare(Compare::Lt, x, zero)?;
                let mt = b.unary(Unary::Neg, t)?;
                let inner = b.select(neg, mt, zero)?;
                return b.select(pos, t, inner).map(Some);
            }
            // relu'(0) = 0.
            Unary::Relu => {
                let zero = k(b, 0.0)?;
                let pos = b.compare(Compare::Gt, x, zero)?;
                return b.select(pos, t, zero).map(Some);
            }
            Unary::Log => return b.binary(Binary::Div, t, x).map(Some),
            Unary::Log1p => {
                let one = k(b, 1.0)?;
                let xp1 = b.binary(Binary::Add, x, one)?;
                return b.binary(Binary::Div, t, xp1).map(Some);
            }
            // t / (2·sqrt(x)): sqrt'(0) = inf (and 0·inf = NaN for a numeric zero tangent).
            Unary::Sqrt => {
                let two = k(b, 2.0)?;
                let den = mul(b, two, y)?;
                return b.binary(Binary::Div, t, den).map(Some);
            }
            Unary::Exp => y,
            Unary::Expm1 => {
                let one = k(b, 1.0)?;
                b.binary(Binary::Add, y, one)?
            }
            Unary::Rsqrt => {
                let half = k(b, -0.5)?;
                let yx = b.binary(Binary::Div, y, x)?;
                mul(b, half, yx)?
            }
            Unary::Recip => {
                let yy = mul(b, y, y)?;
                b.unary(Unary::Neg, yy)?
            }
            Unary::Square => {
                let two = k(b, 2.0)?;
                mul(b, two, x)?
            }
            Unary::Sin => b.unary(Unary::Cos, x)?,
            Unary::Cos => {
                let s = b.unary(Unary::Sin, x)?;
                b.unary(Unary::Neg, s)?
            }
            Unary::Tanh => {
                let one = k(b, 1.0)?;
                let yy = mul(b, y, y)?;
                b.binary(Binary::Sub, one, yy)?
            }
            Unary::Sigmoid => {
                let one = k(b, 1.0)?;
                let om = b.binary(Binary::Sub, one, y)?;
                mul(b, y, om)?
            }
            Unary::Softplus => b.unary(Unary::Sigmoid, x)?,
            // 2/√π·exp(−x²): 0 at ±inf (exp(−inf) = 0), NaN for NaN.
            Unary::Erf => {
                let c = k(b, std::f64::consts::FRAC_2_SQRT_PI)?;
                let xx = b.unary(Unary::Square, x)?;
                let nxx = b.unary(Unary::Neg, xx)?;
                let e = b.unary(Unary::Exp, nxx)?;
                mul(b, c, e)?
            }
        };
        mul(b, t, d).map(Some)
    }
    fn transpose(&self, b: &mut FunctionBuilder, ct: NodeId, operands: &[Lin]) -> TransposeResult {
        match self {
            Unary::Neg => linear_transpose(operands, |_| b.unary(Unary::Neg, ct)),
            _ => Err(not_linear(self.op_name(), "only neg is linear among the unary ops")),
        }
    }
    fn batch(&self, b: &mut FunctionBuilder, a: BatchArgs<'_>) -> BatchResult {
        Ok((b.unary(*self, a.x[0])?, a.dims[0]))
    }
    fn write_attrs(&self, _: &mut String) {}
}

impl ParseOp for Unary {
    fn names() -> Vec<&'static str> {
        Unary::ALL.iter().map(|k| k.op_name()).collect()
    }
    fn parse(name: &str, _: &mut CallArgs) -> Option<Result<Self, String>> {
        Unary::ALL.into_iter().find(|u| u.op_name() == name).map(Ok)
    }
}
