//! Fast mode's inline `exp`, `tanh` and `sigmoid` (`codegen/math.rs`) against reference values,
//! over every binade of f32 and f64 and the special values:
//!
//! - f32: the reference is the f64 function rounded to f32, within half an f32 ulp of the
//!   exact value, so the distance measured is the inline function's own error;
//! - f64: the reference is the platform's libm (Rust's `f64::exp`, `f64::tanh`), itself within
//!   one ulp of the exact value;
//! - sigmoid: the interpreter's formula, `exp` overflowing where the working precision's does.
//!
//! The bound, [`INLINE_MATH_ULPS`] units in the last place of the reference, comes from the arithmetic:
//! Cephes' approximations err by under one ulp on the reduced argument, the reduction
//! `r = x − n·ln 2` is exact up to one rounding, and the reconstruction adds one rounding per
//! operation (`1 + r + r²·P`, the two power-of-two products; for tanh the quotient and the
//! difference `1 − 2/(e + 1)`, whose cancellation is at most a factor 1.6 above |x| = 0.625).
//! Results below the smallest normal number are held to an absolute error of that ulp-count
//! times the smallest subnormal, as the final product rounds once into the subnormal range.
//! Special values are exact: NaN → NaN, exp(±∞) = ∞ / 0, tanh(±∞) = ±1, tanh(−0) = −0.
//! Strict mode calls libm and is checked bit for bit against the interpreter in `ops.rs`.

use jjt_ir::{DType, Function, FunctionBuilder, Tensor, TensorType, Unary};
use jjt_jit::{INLINE_MATH_ULPS, Options, compile_with};

fn unary(u: Unary, ty: &TensorType) -> Function {
    let mut b = FunctionBuilder::new(u.op_name());
    let x = b.input("x", ty.clone()).unwrap();
    let y = b.unary(u, x).unwrap();
    b.finish(y).unwrap()
}

/// The spacing of `d`'s values at `w` (the smallest subnormal below the normal range).
fn ulp(w: f64, d: DType) -> f64 {
    if d == DType::F32 {
        let a = (w as f32).abs();
        if a < f32::MIN_POSITIVE {
            return f64::from(f32::from_bits(1));
        }
        f64::from(f32::from_bits(a.to_bits() + 1) - a)
    } else {
        let a = w.abs();
        if a < f64::MIN_POSITIVE {
            return f64::from_bits(1);
        }
        f64::from_bits(a.to_bits() + 1) - a
    }
}

/// Inputs: the special values, then per binade of magnitude (both signs) a spread of
/// significands, clipped to where the functions are not constant.
fn inputs(d: DType) -> Vec<f64> {
    let mut v = vec![0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 0.625, -0.625];
    let (lo_exp, hi_exp, lo, hi) =
        if d == DType::F32 { (-149, 7, -104.0, 89.0) } else { (-1074, 10, -746.0, 710.0) };
    for e in lo_exp..=hi_exp {
        for k in 0..64 {
            let m = 1.0 + f64::from(k) / 64.0 + 1.0 / 1024.0;
            let x = m * 2f64.powi(e);
            for s in [x, -x] {
                if s > lo && s < hi {
                    v.push(if d == DType::F32 { f64::from(s as f32) } else { s });
                }
            }
        }
    }
    // Near the thresholds: overflow, underflow to subnormals and zero, the tanh switch.
    let edges: &[f64] = if d == DType::F32 {
        &[88.72, 88.7228, 88.73, -87.33, -87.34, -103.0, -103.97, -103.98]
    } else {
        &[709.78, 709.79, -708.39, -708.40, -744.0, -745.13, -745.14]
    };
    for &e in edges {
        for k in -50..=50 {
            let x = e + f64::from(k) * 1e-3;
            v.push(if d == DType::F32 { f64::from(x as f32) } else { x });
        }
    }
    for k in -2000..=2000 {
        let x = f64::from(k) * 0.6253e-3;
        v.push(if d == DType::F32 { f64::from(x as f32) } else { x });
    }
    v
}

/// The reference value. Sigmoid is the interpreter's formula `1 / (1 + exp(−x))`, whose `exp`
/// overflows in the working precision (so sigmoid is 0 below about −88.7 in f32, not a
/// subnormal): `exp` rounded to it, the rest in f64.
fn reference(u: Unary, x: f64, d: DType) -> f64 {
    let y = match u {
        Unary::Exp => x.exp(),
        Unary::Tanh => x.tanh(),
        _ => {
            let e = (-x).exp();
            let e = if d == DType::F32 { f64::from(e as f32) } else { e };
            1.0 / (1.0 + e)
        }
    };
    if d == DType::F32 { f64::from(y as f32) } else { y }
}

/// The largest error in ulps of `u` over the inputs, checking the bound and the specials.
fn max_ulps(u: Unary, d: DType) -> f64 {
    let xs = inputs(d);
    let ty = TensorType::new(d, [xs.len()]);
    let x = Tensor::from_f64(&ty, &xs).unwrap();
    let c = compile_with(&unary(u, &ty), Options::default()).unwrap();
    let got = c.call(&[&x]).unwrap().remove(0).to_f64_vec();
    let mut worst: f64 = 0.0;
    for (&x, &g) in xs.iter().zip(&got) {
        let w = reference(u, x, d);
        if !w.is_finite() || w == 0.0 || x.is_infinite() {
            assert!(
                g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                "{u:?} {d}: at {x:e} got {g:e}, want {w:e}"
            );
            continue;
        }
        let e = (g - w).abs() / ulp(w, d);
        assert!(e <= INLINE_MATH_ULPS, "{u:?} {d}: at {x:e} got {g:e}, want {w:e}: {e} ulps");
        worst = worst.max(e);
    }
    worst
}

#[test]
fn inline_math_is_within_the_stated_ulps() {
    for d in [DType::F32, DType::F64] {
        for u in [Unary::Exp, Unary::Tanh, Unary::Sigmoid] {
            let worst = max_ulps(u, d);
            eprintln!("{u:?} {d}: max {worst:.2} ulps");
        }
    }
}

#[test]
fn inline_math_keeps_zero_signs_and_limits() {
    for d in [DType::F32, DType::F64] {
        let xs = [-0.0, 0.0, f64::INFINITY, f64::NEG_INFINITY, 1e3, -1e3];
        let ty = TensorType::new(d, [xs.len()]);
        let x = Tensor::from_f64(&ty, &xs).unwrap();
        let run = |u| {
            let c = compile_with(&unary(u, &ty), Options::default()).unwrap();
            c.call(&[&x]).unwrap().remove(0).to_f64_vec()
        };
        let t = run(Unary::Tanh);
        assert_eq!(t[0].to_bits(), (-0.0f64).to_bits(), "tanh(-0) {d}");
        assert_eq!(t[1].to_bits(), 0.0f64.to_bits(), "tanh(0) {d}");
        assert_eq!(&t[2..], &[1.0, -1.0, 1.0, -1.0], "tanh limits {d}");
        let e = run(Unary::Exp);
        assert_eq!(e, vec![1.0, 1.0, f64::INFINITY, 0.0, f64::INFINITY, 0.0], "exp {d}");
        let s = run(Unary::Sigmoid);
        assert_eq!(s, vec![0.5, 0.5, 1.0, 0.0, 1.0, 0.0], "sigmoid {d}");
    }
}
