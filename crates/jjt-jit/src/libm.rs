//! Transcendental functions called from generated code: the same Rust (platform libm)
//! functions the interpreter uses, so JIT and interpreter agree bit for bit on them. `erf` is
//! the interpreter's own (`jjt_ir::tensor::Float::erf`: musl's, from the `libm` crate) in every
//! mode.
//!
//! | op | path in the JIT |
//! |---|---|
//! | exp, log, log1p, expm1, sin, cos, tanh, erf, pow | call to the functions below (scalar loop) |
//! | sigmoid, softplus | inline arithmetic around calls to exp / log1p (scalar loop) |
//! | neg, abs, sqrt, rsqrt, recip, square, relu, add, sub, mul, div, maximum, minimum | inline, SIMD |

use jjt_ir::ops::Binary;
use jjt_ir::tensor::Float;
use jjt_ir::{DType, Unary};

macro_rules! unary_fns {
    ($($name:ident, $t:ty, $m:ident;)*) => {
        $(
            extern "C" fn $name(x: $t) -> $t {
                x.$m()
            }
        )*
    };
}

unary_fns! {
    jjt_exp_f32, f32, exp; jjt_exp_f64, f64, exp;
    jjt_log_f32, f32, ln; jjt_log_f64, f64, ln;
    jjt_log1p_f32, f32, ln_1p; jjt_log1p_f64, f64, ln_1p;
    jjt_expm1_f32, f32, exp_m1; jjt_expm1_f64, f64, exp_m1;
    jjt_sin_f32, f32, sin; jjt_sin_f64, f64, sin;
    jjt_cos_f32, f32, cos; jjt_cos_f64, f64, cos;
    jjt_tanh_f32, f32, tanh; jjt_tanh_f64, f64, tanh;
}

extern "C" fn jjt_erf_f32(x: f32) -> f32 {
    Float::erf(x)
}

extern "C" fn jjt_erf_f64(x: f64) -> f64 {
    Float::erf(x)
}

extern "C" fn jjt_pow_f32(x: f32, y: f32) -> f32 {
    x.powf(y)
}

extern "C" fn jjt_pow_f64(x: f64, y: f64) -> f64 {
    x.powf(y)
}

/// The float type a runtime function works in: each function of [`Libm`] and the matrix
/// multiply exist once per precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Precision {
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

impl Precision {
    /// Both precisions, f32 first.
    pub const ALL: [Precision; 2] = [Precision::F32, Precision::F64];

    /// The precision of a float dtype (`bool` values are never passed to these functions;
    /// they map to f32).
    pub fn of(d: DType) -> Precision {
        if d == DType::F64 { Precision::F64 } else { Precision::F32 }
    }
}

/// A value per precision (the matrix multiply's two symbols, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerPrecision<T> {
    /// For f32.
    pub f32: T,
    /// For f64.
    pub f64: T,
}

impl<T: Copy> PerPrecision<T> {
    /// The value for `p`.
    pub fn get(&self, p: Precision) -> T {
        match p {
            Precision::F32 => self.f32,
            Precision::F64 => self.f64,
        }
    }
}

/// A function the generated code calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Libm {
    /// `exp`.
    Exp,
    /// `log`.
    Log,
    /// `log1p`.
    Log1p,
    /// `expm1`.
    Expm1,
    /// `sin`.
    Sin,
    /// `cos`.
    Cos,
    /// `tanh`.
    Tanh,
    /// `erf`.
    Erf,
    /// `pow` (two arguments).
    Pow,
}

impl Libm {
    /// Every function.
    pub const ALL: [Libm; 9] = [
        Libm::Exp,
        Libm::Log,
        Libm::Log1p,
        Libm::Expm1,
        Libm::Sin,
        Libm::Cos,
        Libm::Tanh,
        Libm::Erf,
        Libm::Pow,
    ];

    /// The unary op a call implements directly, if any.
    pub fn of_unary(u: Unary) -> Option<Libm> {
        match u {
            Unary::Exp => Some(Libm::Exp),
            Unary::Log => Some(Libm::Log),
            Unary::Log1p => Some(Libm::Log1p),
            Unary::Expm1 => Some(Libm::Expm1),
            Unary::Sin => Some(Libm::Sin),
            Unary::Cos => Some(Libm::Cos),
            Unary::Tanh => Some(Libm::Tanh),
            Unary::Erf => Some(Libm::Erf),
            Unary::Neg
            | Unary::Abs
            | Unary::Sqrt
            | Unary::Rsqrt
            | Unary::Recip
            | Unary::Square
            | Unary::Sigmoid
            | Unary::Relu
            | Unary::Softplus => None,
        }
    }

    /// Whether evaluating `u` calls a function (so its loop stays scalar).
    pub fn unary_calls(u: Unary) -> bool {
        Libm::of_unary(u).is_some() || matches!(u, Unary::Sigmoid | Unary::Softplus)
    }

    /// Whether evaluating `b` calls a function.
    pub fn binary_calls(b: Binary) -> bool {
        b == Binary::Pow
    }

    /// Symbol name and address of the function in precision `p`.
    pub fn symbol(self, p: Precision) -> (&'static str, *const u8) {
        use Precision::{F32, F64};
        match (self, p) {
            (Libm::Exp, F32) => ("jjt_exp_f32", jjt_exp_f32 as *const u8),
            (Libm::Exp, F64) => ("jjt_exp_f64", jjt_exp_f64 as *const u8),
            (Libm::Log, F32) => ("jjt_log_f32", jjt_log_f32 as *const u8),
            (Libm::Log, F64) => ("jjt_log_f64", jjt_log_f64 as *const u8),
            (Libm::Log1p, F32) => ("jjt_log1p_f32", jjt_log1p_f32 as *const u8),
            (Libm::Log1p, F64) => ("jjt_log1p_f64", jjt_log1p_f64 as *const u8),
            (Libm::Expm1, F32) => ("jjt_expm1_f32", jjt_expm1_f32 as *const u8),
            (Libm::Expm1, F64) => ("jjt_expm1_f64", jjt_expm1_f64 as *const u8),
            (Libm::Sin, F32) => ("jjt_sin_f32", jjt_sin_f32 as *const u8),
            (Libm::Sin, F64) => ("jjt_sin_f64", jjt_sin_f64 as *const u8),
            (Libm::Cos, F32) => ("jjt_cos_f32", jjt_cos_f32 as *const u8),
            (Libm::Cos, F64) => ("jjt_cos_f64", jjt_cos_f64 as *const u8),
            (Libm::Tanh, F32) => ("jjt_tanh_f32", jjt_tanh_f32 as *const u8),
            (Libm::Tanh, F64) => ("jjt_tanh_f64", jjt_tanh_f64 as *const u8),
            (Libm::Erf, F32) => ("jjt_erf_f32", jjt_erf_f32 as *const u8),
            (Libm::Erf, F64) => ("jjt_erf_f64", jjt_erf_f64 as *const u8),
            (Libm::Pow, F32) => ("jjt_pow_f32", jjt_pow_f32 as *const u8),
            (Libm::Pow, F64) => ("jjt_pow_f64", jjt_pow_f64 as *const u8),
        }
    }

    /// Number of arguments.
    pub fn arity(self) -> usize {
        if self == Libm::Pow { 2 } else { 1 }
    }
}
