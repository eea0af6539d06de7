//! `erf` (musl's, from the `libm` crate) through the interpreter: its values at the special
//! points `docs/format.md` states, odd symmetry, the f32 function against the f64 one
//! rounded, and exact GELU traced with `Var::erf`. The f64 function is checked against Python's `math.erf` in the `erf_float64`
//! fixture (`ops_numpy.rs`).

use jjt_ir::{DType, Tensor, interp, text, trace};

/// `erf(x)` for each value, by the interpreter, in f64 and in f32.
fn erf_f64(xs: &[f64]) -> Vec<f64> {
    let n = xs.len();
    let f = text::parse(&format!("func f(x: f64[{n}]) -> f64[{n}] {{ return erf(x) }}")).unwrap();
    interp::eval(&f, &[Tensor::f64([n], xs.to_vec()).unwrap()]).unwrap().to_f64_vec()
}

fn erf_f32(xs: &[f32]) -> Vec<f32> {
    let n = xs.len();
    let f = text::parse(&format!("func f(x: f32[{n}]) -> f32[{n}] {{ return erf(x) }}")).unwrap();
    let y = interp::eval(&f, &[Tensor::f32([n], xs.to_vec()).unwrap()]).unwrap();
    y.to_f64_vec().into_iter().map(|v| v as f32).collect()
}

/// `erf(±0) = ±0` (sign kept), `erf(±inf) = ±1`, NaN for NaN, ±1 exactly once saturated
/// (|x| ≥ 6: 1 − erf(6) ≈ 2e-17 is below half an f64 ulp of 1), in both precisions.
#[test]
fn special_points() {
    let xs = [0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 6.0, -6.0, 1e300];
    let want = [0.0, -0.0, 1.0, -1.0, f64::NAN, 1.0, -1.0, 1.0];
    let y64 = erf_f64(&xs);
    let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect(); // 1e300 → +inf
    let y32 = erf_f32(&xs32);
    for i in 0..xs.len() {
        if want[i].is_nan() {
            assert!(y64[i].is_nan() && y32[i].is_nan(), "erf(NaN): {} {}", y64[i], y32[i]);
        } else {
            assert_eq!(y64[i].to_bits(), want[i].to_bits(), "f64 erf({})", xs[i]);
            assert_eq!(y32[i].to_bits(), (want[i] as f32).to_bits(), "f32 erf({})", xs32[i]);
        }
    }
}

/// Evenly spaced bit patterns of the finite f32 values with |x| < 8 (beyond, erf is ±1), and
/// the f64 values they widen to.
fn f32_sweep() -> Vec<f32> {
    let top = 8.0f32.to_bits();
    let step = 997; // odd, so the sweep hits every low-bit pattern class
    (0..top).step_by(step).flat_map(|b| [f32::from_bits(b), -f32::from_bits(b)]).collect()
}

/// erf is odd bit for bit (musl computes |x|'s value and applies the sign).
#[test]
fn odd_symmetry_is_exact() {
    let xs = f32_sweep();
    let pos: Vec<f32> = xs.iter().map(|x| x.abs()).collect();
    let neg: Vec<f32> = pos.iter().map(|x| -x).collect();
    for (a, b) in erf_f32(&pos).iter().zip(erf_f32(&neg)) {
        assert_eq!((-a).to_bits(), b.to_bits());
    }
    let pos64: Vec<f64> = pos.iter().map(|&x| f64::from(x) * 0.75).collect();
    let neg64: Vec<f64> = pos64.iter().map(|x| -x).collect();
    for (a, b) in erf_f64(&pos64).iter().zip(erf_f64(&neg64)) {
        assert_eq!((-a).to_bits(), b.to_bits());
    }
}

/// The f32 `erf` (musl's `erff`) is within 1 ulp of the f64 `erf` of the same (exactly
/// widened) argument rounded to f32: the f64 value is within 1 f64 ulp of erf(x), so its
/// rounding is within 0.5 f32 ulp (plus 2⁻²⁹ ulp), musl's `erff` is within 1 f32 ulp, and two
/// f32 values that close differ by at most 1 ulp (about 6% of the arguments here do). Over
/// 2·1.09·10⁶ arguments in (−8, 8), subnormals included.
#[test]
fn f32_within_one_ulp_of_f64_rounded() {
    let xs = f32_sweep();
    let wide: Vec<f64> = xs.iter().map(|&x| f64::from(x)).collect();
    let got = erf_f32(&xs);
    let want: Vec<f32> = erf_f64(&wide).into_iter().map(|v| v as f32).collect();
    let mut worst = (0u32, 0.0f32);
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        // Same sign (erf is odd, both keep the argument's), so the bit distance is the ulps.
        assert_eq!(g.is_sign_negative(), w.is_sign_negative(), "sign at {}", xs[i]);
        let d = g.to_bits().abs_diff(w.to_bits());
        if d > worst.0 {
            worst = (d, xs[i]);
        }
    }
    assert!(worst.0 <= 1, "erf f32 is {} ulp from f64 rounded at x = {:e}", worst.0, worst.1);
}

/// `Var::erf` traces the same op the text names: exact GELU, `x·(1 + erf(x/√2))/2`, traced and
/// parsed, gives the same bits; at x = ±√2 it is `±√2·(1 ± erf(1))/2`, with erf(1) =
/// 0.8427007929497149 (the nearest f64) — within 4 ε relative: x/√2 is 1 within 1 ulp (erf'(1) <
/// 0.42 carries that on as less than half an ulp), erf within 1 ulp, and the add and two
/// multiplies round once each (the subtraction 1 − erf(1) ≈ 0.157 magnifies erf's absolute
/// error 5.4 times relative, so the negative side gets 8 ε).
#[test]
fn traced_gelu_matches_the_text() {
    let traced = trace("gelu", |t| {
        let x = t.input("x", DType::F64, [4]);
        &x * 0.5 * ((&x * std::f64::consts::FRAC_1_SQRT_2).erf() + 1.0)
    })
    .unwrap();
    let parsed = text::parse(
        "func gelu(x: f64[4]) -> f64[4] {
  return x * 0.5 * (erf(x * 0.7071067811865476) + 1.0)
}",
    )
    .unwrap();
    let r2 = std::f64::consts::SQRT_2;
    let xs = Tensor::f64([4], vec![-r2, 0.0, r2, 30.0]).unwrap();
    let a = interp::eval(&traced, std::slice::from_ref(&xs)).unwrap().to_f64_vec();
    let b = interp::eval(&parsed, &[xs]).unwrap().to_f64_vec();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a), bits(&b));
    let erf1 = 0.842_700_792_949_714_9;
    let (neg, pos) = (-r2 * 0.5 * (1.0 - erf1), r2 * 0.5 * (1.0 + erf1));
    assert!((a[0] - neg).abs() <= 8.0 * f64::EPSILON * neg.abs(), "{} vs {neg}", a[0]);
    assert_eq!(a[1].to_bits(), 0.0f64.to_bits());
    assert!((a[2] - pos).abs() <= 4.0 * f64::EPSILON * pos, "{} vs {pos}", a[2]);
    assert_eq!(a[3], 30.0); // erf saturates to 1: GELU(x) = x
}
