//! `exp`, `tanh` and `sigmoid` as inline arithmetic, scalar or vector, for fast mode (strict
//! mode calls [`crate::libm`], as the interpreter does). With them a fused expression that
//! applies these functions runs on vectors instead of a scalar loop of calls (gelu, softmax,
//! attention weights, tanh layers).
//!
//! - `exp(x)`: `x` is clamped to a range just wider than the one where the result is finite
//!   and nonzero; `n = round(x / ln 2)` by adding and subtracting `1.5·2^p` (`p` the mantissa
//!   width: the sum's last bit is then `n`, so no float-to-int conversion is needed);
//!   `r = x − n·ln 2` in two parts (Cody–Waite: the first part has few bits, so `n·C1` is
//!   exact); `exp(r)` for `|r| ≤ ln 2 / 2` by Cephes' polynomial (f32) or Padé form (f64);
//!   then the product with `2^n`, made from exponent bits in two factors `2^n1 · 2^n2`
//!   (`n1 ≈ n/2`) so that results that overflow, underflow or are subnormal round as the
//!   product does. NaN stays NaN (the clamp keeps it), `+∞ → +∞`, `−∞ → 0`.
//! - `tanh(x)`: `x + x·z·P(z)` (f32, Cephes) or `x + x·z·P(z)/Q(z)` (f64), `z = x²`, for
//!   `|x| < 0.625`; else `±(1 − 2/(exp(2|x|) + 1))`. Both are computed and one is selected, as
//!   vector code must. `−0` stays `−0`, NaN stays NaN.
//! - `sigmoid(x) = 1 / (1 + exp(−x))`, the interpreter's formula with the inline `exp`.
//!
//! The error against the platform's libm is bounded in `tests/math.rs`, which sweeps every
//! binade of the f32 and f64 ranges: a few units in the last place for results in the normal
//! range, and an absolute error below the smallest normal number otherwise.

#![expect(
    clippy::excessive_precision,
    reason = "the coefficients as Cephes publishes them; the compiler rounds them once"
)]

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value, types};
use jjt_ir::DType;

use super::{Cg, Mode};

/// The constants of one precision.
struct Consts {
    /// Clamp of `exp`'s argument: below `lo` the result is 0, above `hi` it is +∞.
    lo: f64,
    hi: f64,
    /// `1.5·2^p`: adding it rounds to an integer held in the low bits.
    magic: f64,
    /// Exponent bias and mantissa width of the format.
    bias: i64,
    mant: i64,
    /// `ln 2 = c1 + c2`, `c1` with few significant bits.
    c1: f64,
    c2: f64,
}

const F32: Consts = Consts {
    lo: -104.0,
    hi: 89.0,
    magic: 12_582_912.0,
    bias: 127,
    mant: 23,
    c1: 0.693_359_375,
    c2: -2.121_944_4e-4,
};

const F64: Consts = Consts {
    lo: -746.0,
    hi: 710.0,
    magic: 6_755_399_441_055_744.0,
    bias: 1023,
    mant: 52,
    c1: 6.931_457_519_531_25e-1,
    c2: 1.428_606_820_309_417_232_12e-6,
};

/// Cephes `expf`: `exp(r) ≈ 1 + r + r²·P(r)`, highest coefficient first.
const EXP_F32: [f64; 6] = [
    1.987_569_150_0e-4,
    1.398_199_950_7e-3,
    8.333_451_907_3e-3,
    4.166_579_589_4e-2,
    1.666_666_545_9e-1,
    5.000_000_120_1e-1,
];

/// Cephes `exp`: `exp(r) ≈ 1 + 2·r·P(r²) / (Q(r²) − r·P(r²))`.
const EXP_F64_P: [f64; 3] =
    [1.261_771_930_748_105_908_78e-4, 3.029_944_077_074_419_613e-2, 9.999_999_999_999_999_999_1e-1];
const EXP_F64_Q: [f64; 4] = [
    3.001_985_051_386_644_550_42e-6,
    2.524_483_403_496_841_041_92e-3,
    2.272_655_482_081_550_287_66e-1,
    2.000_000_000_000_000_000_09,
];

/// Cephes `tanhf` for `|x| < 0.625`: `tanh(x) ≈ x + x·z·P(z)`, `z = x²`.
const TANH_F32: [f64; 5] = [
    -5.704_988_727_45e-3,
    2.063_908_879_54e-2,
    -5.373_971_555_31e-2,
    1.333_144_220_36e-1,
    -3.333_328_194_22e-1,
];

/// Cephes `tanh` for `|x| < 0.625`: `tanh(x) ≈ x + x·z·P(z)/Q(z)`, `Q` monic.
const TANH_F64_P: [f64; 3] = [
    -9.643_991_794_250_522_386_28e-1,
    -9.928_772_310_019_185_865_64e1,
    -1.614_687_684_417_084_479_52e3,
];
const TANH_F64_Q: [f64; 4] = [
    1.0,
    1.128_116_784_916_329_314_02e2,
    2.235_488_390_601_004_485_83e3,
    4.844_063_053_251_254_860_48e3,
];

/// Below this magnitude `tanh` uses its polynomial.
const TANH_SMALL: f64 = 0.625;

impl Cg<'_, '_> {
    /// The integer type of the same width as `d`'s float (scalar or lanes).
    fn int_ty(mode: Mode, d: DType) -> Type {
        match (mode, d) {
            (Mode::Scalar, DType::F64) => types::I64,
            (Mode::Scalar, _) => types::I32,
            (Mode::Vector, DType::F64) => types::I64X2,
            (Mode::Vector, _) => types::I32X4,
        }
    }

    fn float_ty(mode: Mode, d: DType) -> Type {
        match mode {
            Mode::Scalar => super::scalar_ty(d),
            Mode::Vector => super::vec_ty(d),
        }
    }

    fn int_const(&mut self, mode: Mode, d: DType, v: i64) -> Value {
        let lane = if d == DType::F64 { types::I64 } else { types::I32 };
        let s = self.b.ins().iconst(lane, v);
        match mode {
            Mode::Scalar => s,
            Mode::Vector => self.b.ins().splat(Self::int_ty(mode, d), s),
        }
    }

    /// Horner's rule: `c[0]·xⁿ + … + c[n]`.
    fn horner(&mut self, mode: Mode, d: DType, c: &[f64], x: Value) -> Value {
        let mut acc = self.constant(mode, d, c[0]);
        for &k in &c[1..] {
            let m = self.b.ins().fmul(acc, x);
            let k = self.constant(mode, d, k);
            acc = self.b.ins().fadd(m, k);
        }
        acc
    }

    /// `2^n` for integer `n` (as the integer type) within the normal exponent range.
    fn pow2(&mut self, mode: Mode, d: DType, n: Value, k: &Consts) -> Value {
        let bias = self.int_const(mode, d, k.bias);
        let e = self.b.ins().iadd(n, bias);
        let bits = self.b.ins().ishl_imm_u(e, k.mant);
        self.b.ins().bitcast(Self::float_ty(mode, d), MemFlagsData::new(), bits)
    }

    /// `round(y)` as an integer (of `d`'s width) and as a float, for `|y| < 2^(p−1)`.
    fn round_int(&mut self, mode: Mode, d: DType, y: Value, k: &Consts) -> (Value, Value) {
        let magic = self.constant(mode, d, k.magic);
        let t = self.b.ins().fadd(y, magic);
        let nf = self.b.ins().fsub(t, magic);
        let ity = Self::int_ty(mode, d);
        let ti = self.b.ins().bitcast(ity, MemFlagsData::new(), t);
        let mi = self.b.ins().bitcast(ity, MemFlagsData::new(), magic);
        (self.b.ins().isub(ti, mi), nf)
    }

    /// `exp(x)`, inline.
    pub(super) fn exp_inline(&mut self, x: Value, mode: Mode, d: DType) -> Value {
        let k = if d == DType::F64 { &F64 } else { &F32 };
        let lo = self.constant(mode, d, k.lo);
        let hi = self.constant(mode, d, k.hi);
        // A compare and a select each (NaN compares false and stays NaN): cheaper than the
        // NaN-propagating fmax/fmin sequences.
        let below = self.b.ins().fcmp(FloatCC::LessThan, x, lo);
        let xc = self.choose(mode, d, below, lo, x);
        let above = self.b.ins().fcmp(FloatCC::GreaterThan, xc, hi);
        let xc = self.choose(mode, d, above, hi, xc);
        let log2e = self.constant(mode, d, std::f64::consts::LOG2_E);
        let y = self.b.ins().fmul(xc, log2e);
        let (n, nf) = self.round_int(mode, d, y, k);
        let c1 = self.constant(mode, d, k.c1);
        let c2 = self.constant(mode, d, k.c2);
        let a = self.b.ins().fmul(nf, c1);
        let r = self.b.ins().fsub(xc, a);
        let b = self.b.ins().fmul(nf, c2);
        let r = self.b.ins().fsub(r, b);
        let one = self.constant(mode, d, 1.0);
        let p = if d == DType::F64 {
            // 1 + 2·r·P(r²) / (Q(r²) − r·P(r²))
            let r2 = self.b.ins().fmul(r, r);
            let pp = self.horner(mode, d, &EXP_F64_P, r2);
            let px = self.b.ins().fmul(r, pp);
            let q = self.horner(mode, d, &EXP_F64_Q, r2);
            let den = self.b.ins().fsub(q, px);
            let e = self.b.ins().fdiv(px, den);
            let e2 = self.b.ins().fadd(e, e);
            self.b.ins().fadd(one, e2)
        } else {
            // 1 + r + r²·P(r)
            let r2 = self.b.ins().fmul(r, r);
            let pp = self.horner(mode, d, &EXP_F32, r);
            let t = self.b.ins().fmul(r2, pp);
            let t = self.b.ins().fadd(t, r);
            self.b.ins().fadd(t, one)
        };
        // 2^n = 2^n1 · 2^n2 with n1 = round(n/2): both factors are normal over the clamp.
        let half = self.constant(mode, d, 0.5);
        let h = self.b.ins().fmul(nf, half);
        let (n1, _) = self.round_int(mode, d, h, k);
        let n2 = self.b.ins().isub(n, n1);
        let s1 = self.pow2(mode, d, n1, k);
        let s2 = self.pow2(mode, d, n2, k);
        let p = self.b.ins().fmul(p, s1);
        self.b.ins().fmul(p, s2)
    }

    /// `tanh(x)`, inline.
    pub(super) fn tanh_inline(&mut self, x: Value, mode: Mode, d: DType) -> Value {
        let z = self.b.ins().fmul(x, x);
        let poly = if d == DType::F64 {
            let p = self.horner(mode, d, &TANH_F64_P, z);
            let q = self.horner(mode, d, &TANH_F64_Q, z);
            self.b.ins().fdiv(p, q)
        } else {
            self.horner(mode, d, &TANH_F32, z)
        };
        let xz = self.b.ins().fmul(x, z);
        let t = self.b.ins().fmul(xz, poly);
        let small = self.b.ins().fadd(x, t);
        // x + x·z·P(z) is +0 at x = −0 (P(0) < 0): keep x's zero.
        let zero = self.constant(mode, d, 0.0);
        let is_zero = self.b.ins().fcmp(FloatCC::Equal, x, zero);
        let small = self.choose(mode, d, is_zero, x, small);
        // 1 − 2/(exp(2|x|) + 1), with the sign of x.
        let a = self.b.ins().fabs(x);
        let a2 = self.b.ins().fadd(a, a);
        let e = self.exp_inline(a2, mode, d);
        let one = self.constant(mode, d, 1.0);
        let two = self.constant(mode, d, 2.0);
        let den = self.b.ins().fadd(e, one);
        let q = self.b.ins().fdiv(two, den);
        let big = self.b.ins().fsub(one, q);
        let neg = self.b.ins().fneg(big);
        let is_neg = self.b.ins().fcmp(FloatCC::LessThan, x, zero);
        let big = self.choose(mode, d, is_neg, neg, big);
        let lim = self.constant(mode, d, TANH_SMALL);
        let is_small = self.b.ins().fcmp(FloatCC::LessThan, a, lim);
        self.choose(mode, d, is_small, small, big)
    }

    /// `sigmoid(x) = 1 / (1 + exp(−x))`, inline.
    pub(super) fn sigmoid_inline(&mut self, x: Value, mode: Mode, d: DType) -> Value {
        let n = self.b.ins().fneg(x);
        let e = self.exp_inline(n, mode, d);
        let one = self.constant(mode, d, 1.0);
        let den = self.b.ins().fadd(one, e);
        self.b.ins().fdiv(one, den)
    }
}
